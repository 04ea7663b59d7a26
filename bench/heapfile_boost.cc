// heapfile_boost.cc -- the heap-file workload (heapfile.h) on
// Boost.Interprocess: a managed_mapped_file, the index a named array of
// offset_ptr made by find_or_construct, objects from the segment manager's
// allocate/deallocate; the managed_mapped_file is destroyed (unmapped) and
// opened again with open_only.
//
// A managed_mapped_file has a fixed size given at creation (it can only be
// grown offline): it is made large enough for the workload, as a sparse
// file, so that its allocated bytes are the pages it has written.

#include "heapfile.h"

#include <boost/interprocess/managed_mapped_file.hpp>
#include <boost/interprocess/offset_ptr.hpp>

namespace bip = boost::interprocess;
typedef bip::offset_ptr<char> ref;

int
main (int argc, char **argv)
{
  char path[4096];
  uint32_t n;
  hf_args (argc, argv, "boost", path, sizeof path, &n);
  struct hf_plan pl;
  hf_plan_make (&pl, n);
  std::size_t fsize = (std::size_t) n * 1280 + ((std::size_t) 64 << 20);

  try
    {
      uint64_t t0 = bench_now (), t1;
      ref *idx;
      {
	bip::managed_mapped_file seg (bip::create_only, path, fsize);
	idx = seg.find_or_construct<ref> ("index")[n] ();
	for (uint32_t i = 0; i < n; i++)
	  {
	    char *p = static_cast<char *> (seg.allocate (hf_size (i, 0)));
	    hf_fill (p, i, 0);
	    idx[i] = p;
	  }
	for (uint32_t k = 0; k < n / 2; k++)
	  {
	    uint32_t i = pl.perm[k];
	    seg.deallocate (idx[i].get ());
	    idx[i] = nullptr;
	  }
	for (uint32_t k = 0; k < n / 2; k++)
	  {
	    uint32_t i = pl.perm[k];
	    char *p = static_cast<char *> (seg.allocate (hf_size (i, 1)));
	    hf_fill (p, i, 1);
	    idx[i] = p;
	  }
      }				// destroyed: unmapped, as a detach
      {
	bip::managed_mapped_file seg (bip::open_only, path);
	std::pair<ref *, std::size_t> found = seg.find<ref> ("index");
	idx = found.first;
	if (!idx || found.second != n)
	  bench_fail ("index lost");
	t1 = bench_now ();
	for (uint32_t i = 0; i < n; i++)
	  if (!idx[i] || !hf_check (idx[i].get (), i, pl.gen[i]))
	    bench_fail ("heapfile: an object's contents changed");
	if (!seg.check_sanity ())
	  bench_fail ("heapfile: check_sanity failed");
      }
      hf_report (path, &pl, t0, t1);
    }
  catch (const std::exception &e)
    {
      fprintf (stderr, "boost: %s\n", e.what ());
      bench_fail ("Boost.Interprocess threw");
    }
  unlink (path);
  return 0;
}
