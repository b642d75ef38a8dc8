// SPDX-License-Identifier: GPL-3.0-or-later
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
 * The layout of every map below is mirrored in ../maps.py; change both.
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

/* Address prefix lengths live in the common 128-bit space: 0..128. */
#define MAX_PREFIX_LEN 128
#define LEN_WORDS 3        /* 129 bits of "length in use", 64 per word */
/* ag_prefix_lens is indexed by protocol: TCP 6, UDP 17. Its size also tells this
 * layout from the intermediate ones of its development branch (256 entries, other
 * bit and filter encodings), so `upgrade` refuses to reuse such maps instead of
 * reading them wrongly. */
#define MAX_PROTOCOL 17
#define FILTER_BITS 21     /* ag_prefix_filter has 2^21 u32 counters, two per element (8 MiB) */
#define FILTER_MUL 0x9E3779B97F4A7C15ULL

/*
 * Bindings: one hash map keyed by (protocol, address prefix length, port,
 * masked address), port 0 = "any port". A lookup walks the prefix lengths in
 * use for the protocol (ag_prefix_lens), longest first, and at each length
 * tries the exact port, then port 0: the first hit is the most specific
 * binding (longer address prefix wins; on a tie the exact port wins), the
 * same precedence as the LPM trie this replaced. Before each hash lookup a
 * counting filter (ag_prefix_filter) says whether a binding can have this
 * (protocol, length, masked address, port): most lengths cost an array read or
 * two, not hash lookups. The cost depends on the number of lengths in use,
 * not on the number of bindings (beyond the filter's false positives).
 * IPv4 addresses are stored v4-mapped (::ffff:a.b.c.d), prefix length 96 + n.
 */
struct bind_key {
	__u8 protocol;     /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 prefixlen;    /* address prefix length (0..128) */
	__u16 port;        /* network byte order, 0 = any */
	__u32 addr[4];     /* address, network byte order, host bits zero */
};

struct bind_val {
	__u32 dest_id;     /* index into sockets / dest_metrics */
	__u32 binding_id;  /* index into binding_metrics */
	__u32 addr_bits;   /* == the key's prefixlen; readers need not parse the key for it */
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

/*
 * Which prefix lengths have bindings, per protocol (the array index): bit
 * P = 128 - L of exact[P / 64] when some exact-port binding has length L, of
 * any[] for the port-0 ones. Reversed so that the longest length is the lowest
 * set bit, which takes a few instructions to find (highest would take ~25). The program reads only the bits; the reference counts behind
 * them are the writers' (dispatcher.py), kept in the same value so that one
 * home says both.
 *
 * Writers change this value in place (an array map update is a copy, not an
 * atomic swap), so a concurrent lookup may read a mix of old and new words.
 * That is safe because every change flips bits only in a safe order: a bit is
 * set before the first binding of its length is inserted and cleared only
 * after the last one is deleted. A reader that sees a bit too early or too
 * late does a lookup that misses, nothing more; a binding is visible exactly
 * from its hash insert to its hash delete. (Setting the bit after the insert
 * would leave, after a writer crash in between, a binding that `bindings`
 * lists and the program never finds.)
 */
struct prefix_lens {
	__u64 exact[LEN_WORDS];
	__u64 any[LEN_WORDS];
	__u32 exact_refs[MAX_PREFIX_LEN + 1];  /* writers only: bindings per length */
	__u32 any_refs[MAX_PREFIX_LEN + 1];
};

/*
 * ag_prefix_filter[filter_slot(prefix_hash(protocol, length, masked address),
 * port)] counts the bindings with that protocol, length, masked address and
 * port (0 = any); collisions share a counter. Zero: no such binding, skip its
 * hash lookup. The port is in the slot so that a prefix bound on other ports
 * costs a counter read, not a hash lookup. Writers
 * increment a counter before inserting its binding and decrement it after
 * deleting it (the same safe order as ag_prefix_lens), and compute the slot
 * with the same function (maps.filter_slot). They map the array and store
 * each counter with one aligned 32-bit store, so the program never sees a
 * half-written counter (and no syscall per counter). Counter s is u32 number
 * s of the mapping: element s / 2, half s % 2.
 */
/* Two counters per element: array elements are 8-byte aligned, so a lone u32 would waste half. */
struct filter_pair {
	__u32 count[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << (FILTER_BITS - 1));
	__type(key, __u32);
	__type(value, struct filter_pair);
	__uint(map_flags, BPF_F_MMAPABLE);  /* writers change counters with plain stores */
} ag_prefix_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_BINDINGS);
	__type(key, struct bind_key);
	__type(value, struct bind_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ag_binding_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PROTOCOL + 1);
	__type(key, __u32);
	__type(value, struct prefix_lens);
} ag_prefix_lens SEC(".maps");

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

/* Host-order 32-bit mask of the first n bits (n clamped to 0..32), as a constant expression. */
#define CLAMP32(n) ((n) < 0 ? 0 : (n) > 32 ? 32 : (n))
#define MASK32(n) ((__u32)(0xffffffff00000000ULL >> CLAMP32(n)))
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BE32(x) ((((x) & 0xffu) << 24) | (((x) & 0xff00u) << 8) | (((x) >> 8) & 0xff00u) | ((x) >> 24))
#else
#define BE32(x) (x)
#endif
#define MROW(l) { BE32(MASK32(l)), BE32(MASK32((l) - 32)), BE32(MASK32((l) - 64)), BE32(MASK32((l) - 96)) }
#define MROW8(l) MROW(l), MROW(l + 1), MROW(l + 2), MROW(l + 3), MROW(l + 4), MROW(l + 5), MROW(l + 6), MROW(l + 7)

#define PROW(p) MROW(MAX_PREFIX_LEN - (p))
#define PROW8(p) PROW(p), PROW(p + 1), PROW(p + 2), PROW(p + 3), PROW(p + 4), PROW(p + 5), PROW(p + 6), PROW(p + 7)

/*
 * pos_masks[p][i]: word i (network byte order) of the netmask of length
 * 128 - p, indexed like the bits of ag_prefix_lens. Rows 129..191 (no length;
 * a writer's bug) are all-zero masks: 3 words x 64 bits index it without a
 * bounds check the verifier would need proved. Read-only data.
 */
static const __u32 pos_masks[LEN_WORDS * 64][4] = {
	PROW8(0), PROW8(8), PROW8(16), PROW8(24), PROW8(32), PROW8(40), PROW8(48), PROW8(56),
	PROW8(64), PROW8(72), PROW8(80), PROW8(88), PROW8(96), PROW8(104), PROW8(112), PROW8(120),
	PROW(128),
};

/* Multiply-xor hash of (protocol, length, address words as loaded on this host)... */
static __always_inline __u64 prefix_hash(__u32 proto, __u32 len, const __u32 *w)
{
	__u64 h = ((__u64)proto << 8 | len) + 1;
	h = (h ^ w[0]) * FILTER_MUL;
	h = (h ^ w[1]) * FILTER_MUL;
	h = (h ^ w[2]) * FILTER_MUL;
	return (h ^ w[3]) * FILTER_MUL;
}

/* ...and its filter slot for one port (network byte order; 0 = any): top bits. */
static __always_inline __u32 filter_slot(__u64 prefix_hash, __u16 port)
{
	return (__u32)(((prefix_hash ^ port) * FILTER_MUL) >> (64 - FILTER_BITS));
}

static __always_inline int filter_says_maybe(__u32 slot)
{
	__u32 elem = slot >> 1;
	struct filter_pair *p = bpf_map_lookup_elem(&ag_prefix_filter, &elem);
	return p && p->count[slot & 1];
}

/* De Bruijn sequence for 64 bits and its table: the index of the one set bit of x. */
#define DEBRUIJN64 0x03f79d71b4ca8b09ULL
static const __u8 debruijn_index[64] = {
	0, 1, 56, 2, 57, 49, 28, 3, 61, 58, 42, 50, 38, 29, 17, 4,
	62, 47, 59, 36, 45, 43, 51, 22, 53, 39, 33, 30, 24, 18, 12, 5,
	63, 55, 48, 27, 60, 41, 37, 16, 46, 35, 44, 21, 52, 32, 23, 11,
	54, 26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6,
};

static __always_inline __u32 bit_index(__u64 one)
{
	return debruijn_index[(one * DEBRUIJN64) >> 58] & 63;  /* & 63: a bound the verifier sees */
}

/* An address as 4 words in network byte order, v4-mapped for IPv4. */
struct addr_words {
	__u32 w[4];
};

/*
 * The most specific binding for (protocol, port, address): copied into *out,
 * returns 1; 0 if none. (Pointer arguments of a global function must point
 * to a sized type, hence struct addr_words.)
 *
 * A global (not inlined, not static) function: the verifier checks it once on
 * its own instead of checking the rest of the program once per way out of the
 * loop (207k instructions processed when inlined, on 6.18).
 */
__attribute__((noinline))
int find_binding(__u32 proto, __u16 port, const struct addr_words *a, struct bind_val *out)
{
	const __u32 *addr;
	struct bind_key key = {};
	struct bind_val *b = NULL;

	if (!a || !out)
		return 0;
	addr = a->w;
	struct prefix_lens *lens = bpf_map_lookup_elem(&ag_prefix_lens, &proto);
	if (!lens)
		return 0;
	key.protocol = proto;

	/* Longest length in use first (lowest bit); at each length the exact port before port 0. */
	for (int w = 0; w < LEN_WORDS && !b; w++) {
		__u64 exact = lens->exact[w], any = lens->any[w];
		__u64 todo = exact | any;
		for (int i = 0; i < 64 && todo && !b; i++) {
			__u64 one = todo & -todo;  /* the lowest set bit: the longest length left */
			__u32 pos = w * 64 + bit_index(one);
			/* No length has a bit past 128 (only a writer's bug would set one). The check is
			 * also the bound of pos_masks[pos] that the 6.1 verifier needs: it loses w's
			 * range when w is spilled to the stack ("R1 unbounded memory access"). */
			if (pos > MAX_PREFIX_LEN)
				break;
			__u32 len = MAX_PREFIX_LEN - pos;
			todo &= todo - 1;
			key.prefixlen = len;
			key.addr[0] = addr[0] & pos_masks[pos][0];
			key.addr[1] = addr[1] & pos_masks[pos][1];
			key.addr[2] = addr[2] & pos_masks[pos][2];
			key.addr[3] = addr[3] & pos_masks[pos][3];
			__u64 h = prefix_hash(proto, len, key.addr);
			if ((exact & one) && filter_says_maybe(filter_slot(h, port))) {
				key.port = port;
				b = bpf_map_lookup_elem(&ag_binding_hash, &key);
			}
			if (!b && (any & one) && filter_says_maybe(filter_slot(h, 0))) {
				key.port = 0;
				b = bpf_map_lookup_elem(&ag_binding_hash, &key);
			}
		}
	}
	if (!b)
		return 0;
	*out = *b;
	return 1;
}

SEC("sk_lookup")
int agility_dispatch(struct bpf_sk_lookup *ctx)
{
	struct addr_key local = {};
	struct addr_words a = {};
	__u32 *addr = a.w;

	/* Each context field is read into its own register first: clang would
	 * otherwise merge the two branches' loads through one moved context
	 * pointer, which the verifier refuses. */
	if (ctx->family == FAMILY_INET) {
		__u32 v4 = ctx->local_ip4;
		asm volatile("" : "+r"(v4));
		addr[2] = BE32(0xffffu);
		addr[3] = v4;
	} else if (ctx->family == FAMILY_INET6) {
		__u32 a0 = ctx->local_ip6[0], a1 = ctx->local_ip6[1];
		__u32 a2 = ctx->local_ip6[2], a3 = ctx->local_ip6[3];
		asm volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3));
		addr[0] = a0;
		addr[1] = a1;
		addr[2] = a2;
		addr[3] = a3;
	} else {
		return SK_PASS;
	}

	struct bind_val found = {};  /* initialised: 6.1 refuses uninitialised stack passed to a global function */
	if (!find_binding(ctx->protocol, bpf_htons((__u16)ctx->local_port), &a, &found))
		return SK_PASS;
	struct bind_val *b = &found;

	__u32 dest_id = b->dest_id;
	__u32 binding_id = b->binding_id;
	__builtin_memcpy(local.addr, addr, 16);

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
