"""The logical key hierarchy (protocols/schemes/lkh.py, specs/groupkeys.md sections 3 and 4)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocols.errors import DecodeError, ParameterError, ResyncRequiredError, StateError, VerificationError
from protocols.primitives.drbg import HmacDrbg
from protocols.schemes import lkh

CTX = b"test-group"


def _tree(arity: int, n: int, seed: str = "lkh") -> tuple[lkh.KeyTree, HmacDrbg]:
    rng = HmacDrbg.from_seed(seed)
    return lkh.KeyTree.create(arity, CTX, [b"m%d" % i for i in range(n)], rng), rng


def _views(tree: lkh.KeyTree) -> dict:
    return {m: tree.member_keys(m) for m in tree.members}


def closure(start: dict[int, bytes], wraps: list[lkh.Wrap]) -> dict[int, bytes]:
    """Every key reachable from ``start`` by opening wraps (an eavesdropper's best effort)."""
    known = dict(start)
    by_kek: dict[int, list[lkh.Wrap]] = {}
    for w in wraps:
        by_kek.setdefault(w.kek, []).append(w)
    todo = list(known)
    while todo:
        kek = todo.pop()
        for w in by_kek.get(kek, ()):
            if w.kid not in known:
                known[w.kid] = lkh.unwrap(CTX, known[kek], kek, w.ct, w.kid)
                todo.append(w.kid)
    return known


# -- correctness ---------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(arity=st.integers(2, 5), n=st.integers(1, 40), seed=st.integers(0, 2**32), steps=st.integers(1, 12))
def test_every_member_tracks_the_group_key(arity, n, seed, steps):
    tree, rng = _tree(arity, n, str(seed))
    views = _views(tree)
    r = random.Random(seed)
    fresh = n
    for _ in range(steps):
        members = sorted(tree.members)
        leaves = r.sample(members, r.randint(0, min(4, len(members))))
        joins = [b"j%d" % (fresh + i) for i in range(r.randint(0 if leaves else 1, 5))]
        fresh += len(joins)
        change = tree.rekey(joins, leaves, rng)
        for m in leaves:
            with pytest.raises(StateError):
                views.pop(m).apply(change)
        views = {m: v.apply(change) for m, v in views.items()}
        views.update({m: tree.member_keys(m) for m in joins})
        for m, v in views.items():
            assert v.path == tree.member_keys(m).path
            assert v.group_key == tree.group_key


def test_bounds_of_a_single_leave_and_join():
    for arity, n in ((2, 1024), (4, 4096), (8, 4096)):
        tree, rng = _tree(arity, n)
        h = tree.height
        assert arity**h == n
        change = tree.rekey([], [b"m17"], rng)
        assert len(change.wraps) == lkh.leave_bound(arity, h) == arity * h - 1
        change = tree.rekey([b"new"], [], rng)  # takes the freed leaf
        assert len(change.wraps) == lkh.join_bound(arity, h) == h
        assert tree.members[b"new"] == 17


def test_growth_renames_nothing():
    tree, rng = _tree(2, 4)
    views = _views(tree)
    change = tree.rekey([b"x"], [], rng)
    assert tree.height == 3 and change.height == 3
    assert change.nodes[-1][:2] == (3, 0)
    for m, v in views.items():
        after = v.apply(change)
        assert after.position == v.position and after.path[:3] == v.path[:3] or after.height == 3
        assert after.group_key == tree.group_key
        assert after.path == tree.member_keys(m).path


def test_empty_group_and_last_member_leaving():
    tree = lkh.KeyTree.create(3, CTX, [], HmacDrbg.from_seed("e"))
    assert tree.group_kid == 0
    change = tree.rekey([b"a"], [], HmacDrbg.from_seed("f"))
    assert change.root_kid == tree.group_kid != 0 and change.wraps == ()
    change = tree.rekey([], [b"a"], HmacDrbg.from_seed("g"))
    assert tree.group_kid == 0 and change.root_kid == 0 and change.wraps == ()


# -- forward and backward secrecy: a stateful adversary ---------------------------


class Secrecy(RuleBasedStateMachine):
    """Joins, leaves and batches in any order.  Every member ever seen starts from
    the keys it was given (its welcome) and opens every wrap ever sent, past and
    future; it must reach only group keys from its own membership.  Departed
    members pooling everything reach no group key made after the last departure."""

    @initialize(arity=st.integers(2, 4), n=st.integers(0, 12), seed=st.integers(0, 2**16))
    def setup(self, arity, n, seed):
        self.tree, self.rng = _tree(arity, n, f"sm{seed}")
        self.step = 0
        self.fresh = n
        self.wraps: list[lkh.Wrap] = []
        self.group_keys = {self.tree.group_kid: 0} if n else {}
        self.given = {m: dict(v.path) for m, v in _views(self.tree).items()}
        self.joined = {m: 0 for m in self.tree.members}
        self.left: dict[bytes, int] = {}

    def _apply(self, joins, leaves):
        self.step += 1
        change = self.tree.rekey(joins, leaves, self.rng)
        self.wraps.extend(change.wraps)
        if change.root_kid:
            self.group_keys[change.root_kid] = self.step
        for m in leaves:
            self.left[m] = self.step
        for m in joins:
            self.joined[m] = self.step
            self.given[m] = dict(self.tree.member_keys(m).path)

    @rule(k=st.integers(1, 4))
    def join(self, k):
        joins = [b"j%d" % (self.fresh + i) for i in range(k)]
        self.fresh += k
        self._apply(joins, [])

    @rule(data=st.data())
    def leave(self, data):
        members = sorted(self.tree.members)
        if members:
            self._apply([], data.draw(st.lists(st.sampled_from(members), min_size=1, max_size=3, unique=True)))

    @rule(data=st.data(), k=st.integers(1, 3))
    def batch(self, data, k):
        members = sorted(self.tree.members)
        leaves = data.draw(st.lists(st.sampled_from(members), max_size=3, unique=True)) if members else []
        joins = [b"j%d" % (self.fresh + i) for i in range(k)]
        self.fresh += k
        self._apply(joins, leaves)

    @invariant()
    def each_member_reaches_only_its_own_group_keys(self):
        for m, start in self.given.items():
            reached = closure(start, self.wraps)
            first, last = self.joined[m], self.left.get(m, self.step + 1) - 1
            for kid, step in self.group_keys.items():
                assert (kid in reached) == (first <= step <= last), (m, kid, step, first, last)

    @invariant()
    def departed_members_pooled_reach_nothing_later(self):
        if self.left:
            pooled: dict[int, bytes] = {}
            for m in self.left:
                pooled.update(self.given[m])
            reached = closure(pooled, self.wraps)
            latest = max(self.left.values())
            assert not [kid for kid, step in self.group_keys.items() if step >= latest and kid in reached]


TestSecrecy = Secrecy.TestCase
TestSecrecy.settings = settings(max_examples=30, stateful_step_count=12, deadline=None)


# -- a member that missed a rekey ------------------------------------------------


def test_missed_rekey_needs_a_resync_unless_a_later_one_rekeys_its_path():
    tree, rng = _tree(2, 8)             # leaves m0..m7; m0's path is (1, 0), (2, 0), (3, 0)
    v = tree.member_keys(b"m0")
    tree.rekey([], [b"m5"], rng)        # missed by m0; it changed only the root on m0's path
    v = v.apply(tree.rekey([], [b"m6"], rng))  # the new root is wrapped under (2, 0), which m0 holds
    assert v.path == tree.member_keys(b"m0").path
    tree.rekey([], [b"m2"], rng)        # missed by m0; it changed (2, 0)
    with pytest.raises(ResyncRequiredError):
        v.apply(tree.rekey([], [b"m7"], rng))  # the root is wrapped under the new (2, 0) only
    later = tree.rekey([], [b"m1"], rng)       # m0's sibling leaves: m0's whole path is rekeyed from below
    assert v.apply(later).path == tree.member_keys(b"m0").path


def test_removed_member_is_told():
    tree, rng = _tree(3, 9)
    v = tree.member_keys(b"m4")
    with pytest.raises(StateError, match="no longer in the group"):
        v.apply(tree.rekey([b"new"], [b"m4"], rng))  # the leaf is reused by the joiner


def test_tampered_wrap_and_wrong_length():
    tree, rng = _tree(2, 8)
    v = tree.member_keys(b"m0")
    change = tree.rekey([], [b"m1"], rng)
    w = change.wraps[0]
    bad = lkh.Rekey(change.height, change.nodes,
                    (lkh.Wrap(w.kid, w.kek, bytes([w.ct[0] ^ 1]) + w.ct[1:]),) + change.wraps[1:])
    with pytest.raises(VerificationError):
        v.apply(bad)
    with pytest.raises(DecodeError):  # a short wrap is refused when the rekey is built (Wrap's checks)
        lkh.Rekey(change.height, change.nodes, (lkh.Wrap(w.kid, w.kek, w.ct[:-1]),) + change.wraps[1:])
    with pytest.raises(DecodeError):
        v.apply(lkh.Rekey(change.height - 1, change.nodes[:-1], change.wraps))
    assert v.apply(change).group_key == tree.group_key


def test_wrap_binds_context_and_key_ids():
    key, kek = bytes(range(32)), bytes(32)
    ct = lkh.wrap(CTX, kek, 5, key, 9)
    assert len(ct) == lkh.WRAP_BYTES and lkh.unwrap(CTX, kek, 5, ct, 9) == key
    for args in ((b"other", kek, 5, ct, 9), (CTX, kek, 6, ct, 9), (CTX, kek, 5, ct, 10), (CTX, bytes([1]) * 32, 5, ct, 9)):
        with pytest.raises(VerificationError):
            lkh.unwrap(*args)


def test_bad_batches_change_nothing():
    tree, rng = _tree(2, 4)
    before = (tree.height, dict(tree.members), [bytes(k) for k in tree.keys], tree.next_kid)
    for joins, leaves, error in (([], [], ParameterError), ([b"m0"], [], StateError), ([], [b"zz"], StateError),
                                 ([b"a", b"a"], [], ParameterError), ([], [b"m1", b"m1"], ParameterError),
                                 ([b"m2"], [b"m2"], StateError)):
        with pytest.raises(error):
            tree.rekey(joins, leaves, rng)
        assert (tree.height, dict(tree.members), [bytes(k) for k in tree.keys], tree.next_kid) == before


@pytest.mark.parametrize("arity", [1, 0, 257, True, "2"])
def test_bad_arity(arity):
    with pytest.raises(ParameterError):
        lkh.KeyTree.create(arity, CTX, [b"a"])


def test_bad_create_arguments():
    with pytest.raises(ParameterError):
        lkh.KeyTree.create(2, CTX, [b"a", b"a"])
    with pytest.raises(ParameterError):
        lkh.KeyTree.create(2, CTX, [b"a", b"b", b"c"], height=1)
    with pytest.raises(ParameterError):
        lkh.KeyTree.create(2, "ctx", [b"a"])
    with pytest.raises(StateError):
        lkh.KeyTree.create(2, CTX, [b"a"]).member_keys(b"b")


def test_height_for():
    assert [lkh.height_for(4, n) for n in (0, 1, 4, 5, 16, 17, 10**6)] == [1, 1, 1, 2, 2, 3, 10]
