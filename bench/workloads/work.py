"""Pure-Python workload: dicts, lists, strings, tuples and small objects, no imports beyond sys.

    python3 work.py N

Builds N records from a fixed-seed generator, indexes them in dicts, sorts, formats and parses
strings, and prints a checksum, so every run does the same work."""
import sys


class Rec:
    __slots__ = ("key", "group", "value", "tags")

    def __init__(self, key, group, value, tags):
        self.key = key
        self.group = group
        self.value = value
        self.tags = tags


def rng(seed):
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        yield x >> 33


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    r = rng(12345)
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "xe", "zu"]
    recs = []
    for i in range(n):
        a = next(r)
        word = "".join(syll[(a >> s) % 10] for s in (0, 4, 8, 12))
        recs.append(Rec("%s-%d" % (word, i % 9973), a % 101, a % 100003, [word[:2], word[2:4], str(a % 7)]))

    by_group = {}
    for rec in recs:
        by_group.setdefault(rec.group, []).append(rec)
    counts = {}
    for rec in recs:
        for t in rec.tags:
            counts[t] = counts.get(t, 0) + 1

    total = 0
    for g, lst in sorted(by_group.items()):
        lst.sort(key=lambda x: (x.value, x.key))
        line = ";".join("%s=%d" % (x.key, x.value) for x in lst[:200])
        parts = [p.split("=") for p in line.split(";")]
        total += sum(int(v) for _, v in parts) + len(lst)

    index = {rec.key: rec for rec in recs}
    words = sorted(index, key=lambda k: (len(k), k))
    text = " ".join(words).upper().lower()
    total += len(text) + len(set(text.split())) + sum(counts.values())
    print("python n=%d groups=%d keys=%d checksum=%d" % (n, len(by_group), len(index), total))


main()
