/* The little rtnetlink init needs: loopback up, veth pairs, moving a link
 * into a container's network namespace. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "init.h"

int net_loopback_up(struct kiln_error **err)
{
	cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kiln_error_make(err, errno, "socket");
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0 && errno != EEXIST)
		return kiln_error_make(err, errno, "lo: set address 127.0.0.1");
	sin->sin_addr.s_addr = htonl(0xff000000);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		return kiln_error_make(err, errno, "lo: set netmask 255.0.0.0");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return kiln_error_make(err, errno, "lo: get flags");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return kiln_error_make(err, errno, "lo: up");
	return 0;
}

struct nl_msg {
	uint8_t buf[1024];
	struct nlmsghdr *h;
};

static struct rtattr *nl_attr(struct nl_msg *m, int type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(m->buf + NLMSG_ALIGN(m->h->nlmsg_len));
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	m->h->nlmsg_len = NLMSG_ALIGN(m->h->nlmsg_len) + RTA_ALIGN(a->rta_len);
	return a;
}

static void nl_nest_end(struct nl_msg *m, struct rtattr *a)
{
	a->rta_len = (unsigned short)((uint8_t *)m->buf + m->h->nlmsg_len - (uint8_t *)a);
}

static struct ifinfomsg *nl_start(struct nl_msg *m, int flags)
{
	memset(m->buf, 0, sizeof m->buf);
	m->h = (struct nlmsghdr *)m->buf;
	m->h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	m->h->nlmsg_type = RTM_NEWLINK;
	m->h->nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
	m->h->nlmsg_seq = 1;
	struct ifinfomsg *ifi = NLMSG_DATA(m->h);
	ifi->ifi_family = AF_UNSPEC;
	return ifi;
}

static int nl_talk(struct nl_msg *m, const char *what, struct kiln_error **err)
{
	cleanup_close int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return kiln_error_make(err, errno, "%s: netlink socket", what);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(fd, m->buf, m->h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
		return kiln_error_make(err, errno, "%s: netlink send", what);
	uint8_t reply[4096];
	ssize_t n = recv(fd, reply, sizeof reply, 0);
	if (n < 0)
		return kiln_error_make(err, errno, "%s: netlink receive", what);
	struct nlmsghdr *h = (struct nlmsghdr *)reply;
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && h->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(h);
		if (e->error != 0)
			return kiln_error_make(err, -e->error, "%s", what);
	}
	return 0;
}

int net_link_add(const char *name, const char *kind, struct kiln_error **err)
{
	struct nl_msg m;
	nl_start(&m, NLM_F_CREATE | NLM_F_EXCL);
	nl_attr(&m, IFLA_IFNAME, name, strlen(name) + 1);
	struct rtattr *li = nl_attr(&m, IFLA_LINKINFO, NULL, 0);
	nl_attr(&m, IFLA_INFO_KIND, kind, strlen(kind));
	nl_nest_end(&m, li);
	cleanup_free char *what = xasprintf("create %s link %s", kind, name);
	if (nl_talk(&m, what, NULL) < 0) {
		/* The driver may be a module not loaded yet: rtnl-link-KIND. */
		cleanup_free char *alias = xasprintf("rtnl-link-%s", kind);
		struct kiln_error *ignored = NULL;
		modules_load("", alias, &ignored);
		kiln_error_release(&ignored);
		return nl_talk(&m, what, err);
	}
	return 0;
}

int net_veth_add(const char *name, const char *peer, struct kiln_error **err)
{
	struct nl_msg m;
	nl_start(&m, NLM_F_CREATE | NLM_F_EXCL);
	nl_attr(&m, IFLA_IFNAME, name, strlen(name) + 1);
	struct rtattr *li = nl_attr(&m, IFLA_LINKINFO, NULL, 0);
	nl_attr(&m, IFLA_INFO_KIND, "veth", 4);
	struct rtattr *data = nl_attr(&m, IFLA_INFO_DATA, NULL, 0);
	struct rtattr *p = nl_attr(&m, VETH_INFO_PEER, NULL, 0);
	/* The peer's ifinfomsg (AF_UNSPEC, index 0: already zeroed by nl_start). */
	m.h->nlmsg_len += sizeof(struct ifinfomsg);
	nl_attr(&m, IFLA_IFNAME, peer, strlen(peer) + 1);
	nl_nest_end(&m, p);
	nl_nest_end(&m, data);
	nl_nest_end(&m, li);
	cleanup_free char *what = xasprintf("create veth %s (peer %s)", name, peer);
	if (nl_talk(&m, what, NULL) < 0) {
		struct kiln_error *ignored = NULL;
		modules_load("", "rtnl-link-veth", &ignored);
		kiln_error_release(&ignored);
		return nl_talk(&m, what, err);
	}
	return 0;
}

int net_link_move_to_pid(const char *name, pid_t pid, struct kiln_error **err)
{
	unsigned idx = if_nametoindex(name);
	if (idx == 0)
		return kiln_error_make(err, errno, "interface %s", name);
	struct nl_msg m;
	struct ifinfomsg *ifi = nl_start(&m, 0);
	ifi->ifi_index = (int)idx;
	uint32_t p = (uint32_t)pid;
	nl_attr(&m, IFLA_NET_NS_PID, &p, sizeof p);
	cleanup_free char *what =
	    xasprintf("move %s to the network namespace of pid %d", name, (int)pid);
	return nl_talk(&m, what, err);
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

char *net_first_mac(void)
{
	struct dirent **names;
	int n = scandir("/sys/class/net", &names, NULL, name_cmp);
	if (n < 0)
		return NULL;
	char *mac = NULL;
	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;
		if (mac == NULL && d[0] != '.' && strcmp(d, "lo") != 0) {
			char path[300];
			snprintf(path, sizeof path, "/sys/class/net/%s/address", d);
			cleanup_free char *addr = read_file(path, 256, NULL, NULL);
			if (addr && strncmp(addr, "00:00:00:00:00:00", 17) != 0) {
				mac = xmalloc(strlen(addr) + 1);
				size_t k = 0;
				for (char *p = addr; *p && *p != '\n'; p++)
					if (*p != ':')
						mac[k++] = *p;
				mac[k] = '\0';
			}
		}
		free(names[i]);
	}
	free(names);
	return mac;
}
