# The appliance examples (examples/iot.yml, cloud.yml, cluster-node.yml).
# make cluster-demo: three etcd + docker nodes from one image under QEMU
# (slow under TCG: 10-30 minutes; not part of make test).
.PHONY: cluster-demo
cluster-demo: $(BUILD)/kiln
	KILN=$(CURDIR)/$(BUILD)/kiln examples/cluster-demo.sh $(CURDIR)/build/cluster-demo
