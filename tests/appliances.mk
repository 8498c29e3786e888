# The appliance examples (examples/iot.yml, cloud.yml, cluster-node.yml).
# make cluster-demo: three etcd + docker nodes from one image under QEMU,
# every step checked (examples/cluster-demo.sh; tests/boot/cluster.sh runs
# the same script in make test).
.PHONY: cluster-demo
cluster-demo: $(BUILD)/kiln
	KILN=$(CURDIR)/$(BUILD)/kiln examples/cluster-demo.sh $(CURDIR)/build/cluster-demo
