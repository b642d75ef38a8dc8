// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * REFERENCE ONLY, never loaded by agility-lookup: the LPM-trie dispatcher that
 * agility-lookup shipped before issue 10 item 5 (bindings in one LPM trie,
 * ag_bindings; lookup cost grows with the trie's depth). Kept, unchanged but
 * for this comment, so that
 *   - benchmarks/sklookup_bench.py measures it and the hash design side by
 *     side in one run, and
 *   - the migration test can build state with the old layout, which
 *     state.migrate() moves to the current one (maps.unpack_lpm_bind_key).
 * dispatcher.bpf.c is the program.
 */
/*
 * agility.addressing sk_lookup dispatcher.
 *
 * For every listening-TCP / unconnected-UDP socket lookup in the network
 * namespace it is attached to, find the most specific binding for
 * (protocol, local port, local address) and hand the packet to the socket
 * registered for that binding's destination.
 *
 *   no binding matches            -> SK_PASS, normal socket lookup continues
 *   binding matches, socket known -> bpf_sk_assign() + SK_PASS
 *   binding matches, no socket    -> SK_DROP (counted; never falls through)
 *
 * (Its binding key is mirrored in ../maps.py as the LPM layout, for migration.)
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define FAMILY_INET 2
#define FAMILY_INET6 10

#define MAX_DESTINATIONS 1024
#define MAX_BINDINGS 131072
#define MAX_ADDRESSES 65536
#define LABEL_LEN 64

/* Bits of the LPM key that precede the address: protocol (8) + port (16). */
#define KEY_HEAD_BITS 24

/*
 * LPM key. The port comes before the address so that a binding always covers
 * its whole port (port 0 = "any port" is its own entry, looked up separately),
 * and the trie's longest-prefix rule then orders by address prefix length.
 * IPv4 addresses are stored v4-mapped (::ffff:a.b.c.d).
 */
struct bind_key {
	__u32 prefixlen;   /* KEY_HEAD_BITS + address prefix length (0..128) */
	__u8 protocol;     /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 port;        /* network byte order, 0 = any */
	__u8 addr[16];
} __attribute__((packed));

struct bind_val {
	__u32 dest_id;     /* index into sockets / dest_metrics */
	__u32 binding_id;  /* index into binding_metrics */
	__u32 addr_bits;   /* address prefix length in the v6 space (0..128) */
};

struct counters {
	__u64 lookups;     /* lookups that selected this binding/destination */
	__u64 missing;     /* dropped: no socket registered */
	__u64 incompatible;/* dropped: bpf_sk_assign refused the socket */
};

struct addr_key {
	__u8 addr[16];     /* local (destination) address, v4-mapped for IPv4 */
};

struct addr_val {
	__u64 hits;        /* assigned to a socket */
	__u64 drops;       /* matched a binding but dropped */
};

/* Userspace-only bookkeeping, kept in bpffs with the rest of the state. */
struct dest_key {
	char label[LABEL_LEN];
	__u8 domain;       /* AF_INET / AF_INET6 */
	__u8 protocol;
	__u8 pad[2];
};

struct dest_val {
	__u32 dest_id;
	__u32 refs;        /* bindings referring to the label (domain 0 entry) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_BINDINGS);
	__type(key, struct bind_key);
	__type(value, struct bind_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ag_bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, MAX_DESTINATIONS);
	__type(key, __u32);
	__type(value, __u64);
} ag_sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DESTINATIONS);
	__type(key, struct dest_key);
	__type(value, struct dest_val);
} ag_dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_DESTINATIONS);
	__type(key, __u32);
	__type(value, struct counters);
} ag_dest_metrics SEC(".maps");

/* Shared (not per-CPU) so its size does not grow with the CPU count; atomic adds. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BINDINGS);
	__type(key, __u32);
	__type(value, struct counters);
} ag_bind_metrics SEC(".maps");

/* Bounded: least recently hit addresses are evicted. Shared, atomic adds. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_ADDRESSES);
	__type(key, struct addr_key);
	__type(value, struct addr_val);
} ag_addr_hits SEC(".maps");

static __always_inline void count_address(const struct addr_key *a, int dropped)
{
	struct addr_val *v = bpf_map_lookup_elem(&ag_addr_hits, a);
	if (v) {
		if (dropped)
			__sync_fetch_and_add(&v->drops, 1);
		else
			__sync_fetch_and_add(&v->hits, 1);
		return;
	}
	struct addr_val init = { .hits = dropped ? 0 : 1, .drops = dropped ? 1 : 0 };
	bpf_map_update_elem(&ag_addr_hits, a, &init, BPF_NOEXIST);
}

SEC("sk_lookup")
int agility_dispatch(struct bpf_sk_lookup *ctx)
{
	struct bind_key key = {};
	struct addr_key local = {};

	if (ctx->family == FAMILY_INET) {
		__u32 v4 = ctx->local_ip4;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &v4, 4);
	} else if (ctx->family == FAMILY_INET6) {
		__u32 a0 = ctx->local_ip6[0], a1 = ctx->local_ip6[1];
		__u32 a2 = ctx->local_ip6[2], a3 = ctx->local_ip6[3];
		__builtin_memcpy(&key.addr[0], &a0, 4);
		__builtin_memcpy(&key.addr[4], &a1, 4);
		__builtin_memcpy(&key.addr[8], &a2, 4);
		__builtin_memcpy(&key.addr[12], &a3, 4);
	} else {
		return SK_PASS;
	}

	key.prefixlen = KEY_HEAD_BITS + 128;
	key.protocol = ctx->protocol;

	/* Exact port first, then the "any port" entry. */
	key.port = bpf_htons((__u16)ctx->local_port);
	struct bind_val *exact = bpf_map_lookup_elem(&ag_bindings, &key);
	key.port = 0;
	struct bind_val *any = bpf_map_lookup_elem(&ag_bindings, &key);

	/* Longer address prefix wins; on a tie the exact port wins. */
	struct bind_val *b = exact;
	if (!b || (any && any->addr_bits > b->addr_bits))
		b = any;
	if (!b)
		return SK_PASS;

	__u32 dest_id = b->dest_id;
	__u32 binding_id = b->binding_id;
	__builtin_memcpy(local.addr, key.addr, 16);

	struct counters *bm = bpf_map_lookup_elem(&ag_bind_metrics, &binding_id);
	struct counters *dm = bpf_map_lookup_elem(&ag_dest_metrics, &dest_id);
	if (bm)
		__sync_fetch_and_add(&bm->lookups, 1);
	if (!dm) {
		/* dest_id out of range: the sockmap has the same size, so there
		 * cannot be a socket either. Refuse rather than fall through. */
		if (bm)
			__sync_fetch_and_add(&bm->missing, 1);
		count_address(&local, 1);
		return SK_DROP;
	}
	dm->lookups++;

	struct bpf_sock *sk = bpf_map_lookup_elem(&ag_sockets, &dest_id);
	if (!sk) {
		dm->missing++;
		if (bm)
			__sync_fetch_and_add(&bm->missing, 1);
		count_address(&local, 1);
		return SK_DROP;
	}

	long err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		dm->incompatible++;
		if (bm)
			__sync_fetch_and_add(&bm->incompatible, 1);
		count_address(&local, 1);
		return SK_DROP;
	}
	count_address(&local, 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
