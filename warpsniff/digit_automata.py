"""Regular expressions over the ten ASCII digits as automata C can walk
(ext/labels/ws_labels.h): the subset phonenumbers' metadata is written in
(digits, classes, `\\d`, groups, `|`, `?`, `*`, `+`, `{n,m}`, `$`).

Two kinds of automaton, both deterministic, over one shared pool of states
(`Pool`; state 0 is the dead state):

- a *set* automaton (`Pool.set_dfa`) for several patterns at once: each
  state carries a bit per pattern that matches the digits read so far, so
  one walk answers `fullmatch` for all of them (a number's general
  description and its types), or, stopping at the first accepting state,
  whether `match` finds anything (leading digits);
- a *first-match* automaton (`Pool.first_match_dfa`) for where Python's
  `re.match` ends: its states are lists of NFA threads in the backtracking
  engine's priority order, cut after the first thread that matches (no later
  thread can win), as RE2 builds its leftmost-first DFA, so the end it gives
  is the one `re` gives, and so is whether one group took part in the match.

A pattern outside the subset raises `Unsupported`: its user asks Python.
"""
from __future__ import annotations

from array import array
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Unsupported", "Pool", "parse", "capturing_groups", "MATCH_NOW", "MATCH_NOW_GROUP", "MATCH_AT_END",
           "MATCH_AT_END_GROUP"]

DIGITS = 10
ANY_DIGIT = (1 << DIGITS) - 1

# flags of a first-match state (Pool.tags)
MATCH_NOW = 1            # a thread has matched here (what re.match returns if nothing better follows)
MATCH_NOW_GROUP = 2      # ... and the tracked group took part in it
MATCH_AT_END = 4         # at the end of the input (where `$` holds) the first thread that can match does
MATCH_AT_END_GROUP = 8   # ... and the tracked group took part in it


class Unsupported(ValueError):
    """A pattern (or a use of one) these automata do not cover."""


# ------------------------------------------------------------------ parsing
# Syntax tree: ("set", mask) | ("cat", [node]) | ("alt", [node]) | ("rep", node, lo, hi|None, greedy)
#              | ("group", k, node) (k 0: not capturing) | ("eol",)


class _Parser:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.groups = 0

    def fail(self, what: str):
        raise Unsupported(f"{what} at {self.i} in {self.p!r}")

    def peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def alt(self):
        branches = [self.cat()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.cat())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def cat(self):
        items = []
        while self.peek() not in ("", "|", ")"):
            items.append(self.quantified(self.atom()))
        return items[0] if len(items) == 1 else ("cat", items)

    def atom(self):
        c = self.peek()
        self.i += 1
        if "0" <= c <= "9":
            return ("set", 1 << (ord(c) - 48))
        if c == "\\":
            if self.peek() != "d":
                self.fail("an escape other than \\d")
            self.i += 1
            return ("set", ANY_DIGIT)
        if c == "[":
            return ("set", self.klass())
        if c == "(":
            k = 0
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                self.fail("a group extension")
            else:
                self.groups += 1
                k = self.groups
            inner = self.alt()
            if self.peek() != ")":
                self.fail("an unclosed group")
            self.i += 1
            return ("group", k, inner)
        if c == "$":
            return ("eol",)
        self.i -= 1
        self.fail(f"{c!r}")

    def klass(self) -> int:
        mask = 0
        if self.peek() == "^":
            self.fail("a negated class")
        while True:
            c = self.peek()
            self.i += 1
            if c == "]" and mask:
                return mask
            if c == "\\" and self.peek() == "d":
                self.i += 1
                mask |= ANY_DIGIT
            elif "0" <= c <= "9":
                lo = hi = ord(c) - 48
                if self.peek() == "-" and "0" <= self.p[self.i + 1:self.i + 2] <= "9" and self.p[self.i + 1:self.i + 2]:
                    hi = ord(self.p[self.i + 1]) - 48
                    self.i += 2
                    if hi < lo:
                        self.fail("a reversed range")
                for d in range(lo, hi + 1):
                    mask |= 1 << d
            else:
                self.i -= 1
                self.fail("a class member other than digits")

    def quantified(self, node):
        while True:
            c = self.peek()
            if c == "?":
                lo, hi = 0, 1
                self.i += 1
            elif c == "*":
                lo, hi = 0, None
                self.i += 1
            elif c == "+":
                lo, hi = 1, None
                self.i += 1
            elif c == "{":
                end = self.p.find("}", self.i)
                body = self.p[self.i + 1:end] if end > 0 else ""
                lo_text, comma, hi_text = body.partition(",")
                if not lo_text.isdigit() or (hi_text and not hi_text.isdigit()):
                    self.fail("a malformed repeat")
                lo = int(lo_text)
                hi = (int(hi_text) if hi_text else None) if comma else lo
                if hi is not None and hi < lo:
                    self.fail("a reversed repeat")
                self.i = end + 1
            else:
                return node
            if node[0] == "eol":
                self.fail("a repeated $")
            greedy = True
            if self.peek() == "?":
                greedy = False
                self.i += 1
            node = ("rep", node, lo, hi, greedy)


def parse(pattern: str):
    """(syntax tree, number of capturing groups) of a pattern; Unsupported outside the subset."""
    parser = _Parser(pattern)
    tree = parser.alt()
    if parser.i != len(pattern):
        parser.fail("an unmatched )")
    return tree, parser.groups


def capturing_groups(node) -> set:
    """The numbers of the capturing groups in a syntax tree."""
    kind = node[0]
    if kind in ("cat", "alt"):
        return set().union(*(capturing_groups(n) for n in node[1]))
    if kind == "rep":
        return capturing_groups(node[1])
    if kind == "group":
        return capturing_groups(node[2]) | ({node[1]} if node[1] else set())
    return set()


def _nullable(node) -> bool:
    kind = node[0]
    if kind == "set":
        return False
    if kind == "eol":
        return True
    if kind == "cat":
        return all(_nullable(n) for n in node[1])
    if kind == "alt":
        return any(_nullable(n) for n in node[1])
    if kind == "rep":
        return node[2] == 0 or _nullable(node[1])
    return _nullable(node[2])   # group


# ------------------------------------------------------------------ NFA
# nodes: [CHAR, mask, out] | [SPLIT, [outs in priority order]] | [EOL, out] | [CLOSE, k, out] | [MATCH, tag]
_CHAR, _SPLIT, _EOL, _CLOSE, _MATCH = range(5)


class _Nfa:
    def __init__(self):
        self.nodes: List[list] = []

    def add(self, node: list) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def build(self, node, nxt: int) -> int:
        """The start of `node`'s fragment, which continues at nxt (built back to front)."""
        kind = node[0]
        if kind == "set":
            return self.add([_CHAR, node[1], nxt])
        if kind == "eol":
            return self.add([_EOL, nxt])
        if kind == "cat":
            for item in reversed(node[1]):
                nxt = self.build(item, nxt)
            return nxt
        if kind == "alt":
            return self.add([_SPLIT, [self.build(b, nxt) for b in node[1]]])
        if kind == "group":
            k, inner = node[1], node[2]
            return self.build(inner, self.add([_CLOSE, k, nxt]) if k else nxt)
        _, inner, lo, hi, greedy = node
        if hi is None:
            if _nullable(inner):
                raise Unsupported("a loop over something that can match nothing")
            loop = self.add([_SPLIT, []])
            body = self.build(inner, loop)
            self.nodes[loop][1] = [body, nxt] if greedy else [nxt, body]
            tail = loop
        else:
            tail = nxt
            for _ in range(hi - lo):   # (x(x(x)?)?)?: each optional copy nested in the one before
                body = self.build(inner, tail)
                tail = self.add([_SPLIT, [body, nxt] if greedy else [nxt, body]])
        for _ in range(lo):
            tail = self.build(inner, tail)
        return tail


# ------------------------------------------------------------------ the pool


class Pool:
    """Deterministic automata over digits, in flat arrays: state s goes to
    trans[10 * s + d] on digit d (0: the dead state, which stays dead), and
    tags[s] are its pattern bits (set automata) or MATCH_* flags (first-match
    automata)."""

    def __init__(self):
        self.trans = array("i", [0] * DIGITS)
        self.tags = array("H", [0])
        self._cache: Dict[tuple, int] = {}

    @property
    def states(self) -> int:
        return len(self.tags)

    def _new_state(self, tag: int) -> int:
        self.tags.append(tag)
        self.trans.extend([0] * DIGITS)
        return len(self.tags) - 1

    # -- set automata ---------------------------------------------------------

    def set_dfa(self, patterns: Sequence[Optional[str]]) -> int:
        """The start state of one automaton for several patterns: a state's
        tag has bit i set when the digits read so far are a whole match of
        patterns[i] (None: a pattern that never matches). Built once per
        distinct list."""
        key = ("set",) + tuple(patterns)
        if key in self._cache:
            return self._cache[key]
        nfa = _Nfa()
        starts = []
        for i, pattern in enumerate(patterns):
            if pattern is None:
                continue
            tree, _ = parse(pattern)
            starts.append(nfa.build(tree, nfa.add([_MATCH, 1 << i])))
        if not starts:
            self._cache[key] = 0
            return 0
        if len(patterns) > 16:
            raise Unsupported("more than 16 patterns in one automaton")
        nodes = nfa.nodes

        def closure(seeds) -> frozenset:
            out, todo = set(), list(seeds)
            while todo:
                n = todo.pop()
                if n in out:
                    continue
                out.add(n)
                node = nodes[n]
                kind = node[0]
                if kind == _SPLIT:
                    todo.extend(node[1])
                elif kind == _CLOSE:
                    todo.append(node[2])
                elif kind == _EOL:
                    raise Unsupported("$ in a pattern matched whole")
            return frozenset(n for n in out if nodes[n][0] in (_CHAR, _MATCH))

        def tag_of(state: frozenset) -> int:
            tag = 0
            for n in state:
                if nodes[n][0] == _MATCH:
                    tag |= nodes[n][1]
            return tag

        def successor(state: frozenset, bit: int) -> frozenset:
            return closure([nodes[n][2] for n in state if nodes[n][0] == _CHAR and nodes[n][1] & bit])

        found = self._cache[key] = self._determinize(closure(starts), successor, tag_of)
        return found

    def _determinize(self, start, successor, tag_of) -> int:
        """States for `start` and every state successor(state, 1 << digit)
        reaches from it, with their transitions and tags; start's index. The
        empty state (no thread left) is the dead one."""
        index = {type(start)(): 0, start: self._new_state(tag_of(start))}
        todo = [start]
        while todo:
            state = todo.pop()
            s = index[state]
            for d in range(DIGITS):
                nxt = successor(state, 1 << d)
                t = index.get(nxt)
                if t is None:
                    t = index[nxt] = self._new_state(tag_of(nxt))
                    todo.append(nxt)
                self.trans[DIGITS * s + d] = t
        return index[start]

    # -- first-match automata -------------------------------------------------

    def first_match_dfa(self, pattern: str, group: int = 0) -> int:
        """The start state of the automaton for where re.match(pattern, s)
        ends and whether `group` (0: none) took part: walk the digits,
        remembering the last position whose state has MATCH_NOW, until the
        dead state; at the end of the input MATCH_AT_END decides instead."""
        key = ("first", pattern, group)
        if key in self._cache:
            return self._cache[key]
        tree, _ = parse(pattern)
        nfa = _Nfa()
        start_node = nfa.build(tree, nfa.add([_MATCH, 1]))
        nodes = nfa.nodes

        def follow(threads, at_end: bool) -> Tuple[tuple, int]:
            """Threads (node, took the group) in priority order, each followed
            through its empty steps depth-first in priority order, the first
            to reach a node keeping it (a backtracking engine would never try
            a later one there); cut after the first that matches. Returns the
            list and, at the end of input, the match flags of its first
            matching thread."""
            out, seen = [], set()
            for node, took in threads:
                stack = [(node, took)]
                while stack:
                    n, t = stack.pop()
                    if n in seen:
                        continue
                    seen.add(n)
                    kind = nodes[n][0]
                    if kind == _SPLIT:
                        stack.extend((o, t) for o in reversed(nodes[n][1]))
                    elif kind == _CLOSE:
                        stack.append((nodes[n][2], t or nodes[n][1] == group))
                    elif kind == _EOL and at_end:
                        stack.append((nodes[n][1], t))
                    else:
                        out.append((n, t))
                        if kind == _MATCH:
                            return tuple(out)
            return tuple(out)

        def tag_of(state: tuple) -> int:
            tag = 0
            if state and nodes[state[-1][0]][0] == _MATCH:
                tag |= MATCH_NOW | (MATCH_NOW_GROUP if state[-1][1] else 0)
            for n, t in state:   # the first thread that matches where $ holds
                ended = follow([(n, t)], True)
                if ended and nodes[ended[-1][0]][0] == _MATCH:
                    tag |= MATCH_AT_END | (MATCH_AT_END_GROUP if ended[-1][1] else 0)
                    break
            return tag

        def successor(state: tuple, bit: int) -> tuple:
            return follow([(nodes[n][2], t) for n, t in state if nodes[n][0] == _CHAR and nodes[n][1] & bit], False)

        found = self._cache[key] = self._determinize(follow([(start_node, False)], False), successor, tag_of)
        return found

    # -- walking (what the C does; for tests and for building) ----------------

    def fullmatch_tags(self, start: int, digits: str) -> int:
        s = start
        for c in digits:
            s = self.trans[DIGITS * s + ord(c) - 48]
            if s == 0:
                return 0
        return self.tags[s]

    def match_exists(self, start: int, digits: str) -> bool:
        s = start
        if s and self.tags[s]:
            return True
        for c in digits:
            s = self.trans[DIGITS * s + ord(c) - 48]
            if s == 0:
                return False
            if self.tags[s]:
                return True
        return False

    def first_match(self, start: int, digits: str) -> Tuple[int, bool]:
        """(end, group took part) of re.match, or (-1, False) for no match."""
        end, took, s = -1, False, start
        for i, c in enumerate(digits):
            if s == 0:
                return end, took
            if self.tags[s] & MATCH_NOW:
                end, took = i, bool(self.tags[s] & MATCH_NOW_GROUP)
            s = self.trans[DIGITS * s + ord(c) - 48]
        if s and self.tags[s] & MATCH_AT_END:
            return len(digits), bool(self.tags[s] & MATCH_AT_END_GROUP)
        return end, took
