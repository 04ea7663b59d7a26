# alloc.py -- an allocation-heavy python workload for the drop-in malloc row.
# Run with PYTHONMALLOC=malloc so that every object goes through malloc.
# Prints a checksum, so that every allocator is seen to compute the same.
import json, random, sys
random.seed(7)
total = 0
for rnd in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    d = {}
    for i in range(60000):
        d["k%d" % i] = [random.random(), str(i) * (i % 5), {"n": i}]
    s = json.dumps(d)
    e = json.loads(s)
    total += len(s) + sum(len(v[1]) for v in e.values())
    words = sorted(("w%07d" % random.randrange(10**6)) for _ in range(50000))
    total += len(set(words))
print(total)
