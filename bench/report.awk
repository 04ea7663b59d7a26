# report.awk -- the one table of the benchmark suite, from run.sh's files.
#
# usage: awk -F '\t' -f report.awk SPEC RAW
#
# SPEC (tab-separated, one table row group a line, in table order):
#   group  metric  label  unit  decimals  basis  target
# basis "mm": the ratio is to mmalloc's value of the same round;
#       another metric name: to this allocator's value of that metric in
#       the same round (re-attach: to the 1 MiB heap).
# target: "-", "speed" (<= glibc, <= 1.2x mimalloc), "boost" (Boost.
#       Interprocess at least 2x slower, aim 3x), "le:X" or "lt:X" (the
#       value of mmalloc itself).
#
# RAW (space-separated): group allocator round metric value
#
# The median column is the median over the rounds; the ratio column is the
# median over the rounds of (value / basis value of the same round), so that
# each ratio compares runs made side by side.  Output: a markdown table
# with padded columns (readable as plain text too).

FNR == NR {
  nspec++
  sg[nspec] = $1; sm[nspec] = $2; sl[nspec] = $3; su[nspec] = $4
  sd[nspec] = $5; sb[nspec] = $6; st[nspec] = $7
  next
}

{
  split ($0, f, " ")
  k = f[1] SUBSEP f[2] SUBSEP f[4]
  if (!(k SUBSEP f[3] in val))
    rounds[k] = rounds[k] " " f[3]
  val[k SUBSEP f[3]] = f[5] + 0
}

function median (a, n,    i, j, t) {
  for (i = 2; i <= n; i++)
    {
      t = a[i]
      for (j = i - 1; j >= 1 && a[j] > t; j--)
	a[j + 1] = a[j]
      a[j + 1] = t
    }
  if (n % 2)
    return a[(n + 1) / 2]
  return (a[n / 2] + a[n / 2 + 1]) / 2
}

# Median of the values of allocator AL for spec row I; "" if none.
function med_value (i, al,    k, n, r, nr, v, j) {
  k = sg[i] SUBSEP al SUBSEP sm[i]
  if (!(k in rounds))
    return ""
  nr = split (rounds[k], r, " ")
  n = 0
  for (j = 1; j <= nr; j++)
    v[++n] = val[k SUBSEP r[j]]
  return median (v, n)
}

# Median of the per-round ratios of AL to the basis of row I; "" if none.
function med_ratio (i, al,    k, kb, n, r, nr, v, b, j) {
  k = sg[i] SUBSEP al SUBSEP sm[i]
  if (sb[i] == "mm")
    kb = sg[i] SUBSEP "mmalloc" SUBSEP sm[i]
  else
    kb = sg[i] SUBSEP al SUBSEP sb[i]
  if (!(k in rounds))
    return ""
  nr = split (rounds[k], r, " ")
  n = 0
  for (j = 1; j <= nr; j++)
    if ((kb SUBSEP r[j]) in val)
      {
	b = val[kb SUBSEP r[j]]
	if (b > 0)
	  v[++n] = val[k SUBSEP r[j]] / b
      }
  if (n == 0)
    return ""
  return median (v, n)
}

function fmt (v, d) {
  return sprintf ("%." d "f", v)
}

function verdict (ok) {
  return ok ? "met" : "MISSED"
}

# The target text for mmalloc's row I, whose median is V.
function target (i, v,    t, x, out, lim) {
  t = st[i]
  if (t == "-" || t == "")
    return ""
  if (t == "speed")
    {
      out = ""
      x = med_ratio (i, "glibc")
      if (x != "" && x > 0)
	out = "<= glibc: " verdict (1 / x <= 1.0) " (" fmt (1 / x, 2) "x)"
      x = med_ratio (i, "mimalloc")
      if (x != "" && x > 0)
	out = out (out == "" ? "" : "; ") "<= 1.2x mimalloc: " \
	  verdict (1 / x <= 1.2) " (" fmt (1 / x, 2) "x)"
      return out
    }
  if (t == "boost")
    {
      x = med_ratio (i, "boost")
      if (x == "")
	return "Boost.Interprocess not run"
      return ">= 2x faster than Boost (aim 3x): " verdict (x >= 2.0) \
	(x >= 3.0 ? ", aim met" : "") " (" fmt (x, 2) "x)"
    }
  lim = substr (t, 4) + 0
  if (substr (t, 1, 3) == "le:")
    return "<= " substr (t, 4) ": " verdict (v <= lim)
  if (substr (t, 1, 3) == "lt:")
    return "< " substr (t, 4) ": " verdict (v < lim)
  return ""
}

function pad (s, w) {
  while (length (s) < w)
    s = s " "
  return s
}

END {
  nal = split ("mmalloc glibc jemalloc mimalloc tcmalloc boost pmdk", als, " ")
  name["mmalloc"] = "mmalloc"; name["glibc"] = "glibc malloc"
  name["jemalloc"] = "jemalloc"; name["mimalloc"] = "mimalloc"
  name["tcmalloc"] = "tcmalloc"; name["boost"] = "Boost.Interprocess"
  name["pmdk"] = "PMDK libpmemobj"
  nrow = 1
  c1[1] = "workload"; c2[1] = "allocator"; c3[1] = "median"
  c4[1] = "ratio to mmalloc"; c5[1] = "target (mmalloc rows)"
  for (i = 1; i <= nspec; i++)
    {
      shown = 0
      for (a = 1; a <= nal; a++)
	{
	  al = als[a]
	  v = med_value (i, al)
	  if (v == "")
	    continue
	  x = med_ratio (i, al)
	  nrow++
	  c1[nrow] = shown ? "" : sl[i]
	  c2[nrow] = name[al]
	  c3[nrow] = fmt (v, sd[i]) " " su[i]
	  c4[nrow] = x == "" ? "-" : fmt (x, 2)
	  c5[nrow] = al == "mmalloc" ? target (i, v) : ""
	  shown = 1
	}
    }
  for (r = 1; r <= nrow; r++)
    {
      if (length (c1[r]) > w1) w1 = length (c1[r])
      if (length (c2[r]) > w2) w2 = length (c2[r])
      if (length (c3[r]) > w3) w3 = length (c3[r])
      if (length (c4[r]) > w4) w4 = length (c4[r])
      if (length (c5[r]) > w5) w5 = length (c5[r])
    }
  for (r = 1; r <= nrow; r++)
    {
      printf "| %s | %s | %s | %s | %s |\n", pad(c1[r], w1), pad(c2[r], w2), \
	pad(c3[r], w3), pad(c4[r], w4), pad(c5[r], w5)
      if (r == 1)
	{
	  d1 = ""; while (length (d1) < w1) d1 = d1 "-"
	  d2 = ""; while (length (d2) < w2) d2 = d2 "-"
	  d3 = ""; while (length (d3) < w3 - 1) d3 = d3 "-"
	  d4 = ""; while (length (d4) < w4 - 1) d4 = d4 "-"
	  d5 = ""; while (length (d5) < w5) d5 = d5 "-"
	  printf "| %s | %s | %s: | %s: | %s |\n", d1, d2, d3, d4, d5
	}
    }
}
