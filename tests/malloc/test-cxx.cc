// test-cxx.cc -- C++ allocation reaches the drop-in malloc: operator new and
// delete (plain, array, aligned, nothrow), the standard containers, strings
// and streams, exceptions, std::bad_alloc, and threads with thread_local
// objects, all served by mmalloc's default heap and counted by
// mmstats (NULL).  Built like the C tests: linked with
// libmmalloc-malloc.a, and without it (MT_PRELOAD) to run under LD_PRELOAD.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

extern "C" {			// this cmocka.h has no C++ guard
#include "mtest.h"
}

namespace {

struct Node
{
  char payload[100];
  Node *next;
};

struct alignas (64) Line
{
  unsigned char b[64];
};

struct alignas (4096) PageObj
{
  unsigned char b[5000];
};

std::size_t
used_chunks ()
{
  return mmstats (NULL).chunks_used;
}

void
new_and_delete_reach_mmalloc (void **)
{
  std::size_t base = used_chunks ();
  std::vector<Node *> *keep = new std::vector<Node *>;
  keep->reserve (1000);
  std::size_t with_vector = used_chunks ();
  assert_int_equal (with_vector, base + 2);	// the vector and its storage
  for (int i = 0; i < 1000; i++)
    {
      Node *n = new Node;
      std::memset (n->payload, i & 0xff, sizeof n->payload);
      keep->push_back (n);
      assert_true (malloc_usable_size (n) >= sizeof (Node));
      assert_int_equal (mmalloc_usable_size (NULL, n), malloc_usable_size (n));
    }
  assert_int_equal (used_chunks (), with_vector + 1000);
  for (Node *n : *keep)
    delete n;
  assert_int_equal (used_chunks (), with_vector);
  delete keep;
  assert_int_equal (used_chunks (), base);
}

void
arrays_and_aligned_new (void **)
{
  std::size_t base = used_chunks ();
  struct mstats before = mmstats (NULL);
  int *big = new int[1000000];
  assert_int_equal (used_chunks (), base + 1);
  assert_true (mmstats (NULL).bytes_used >= before.bytes_used + 4000000);
  assert_true (malloc_usable_size (big) >= 4000000);
  for (int i = 0; i < 1000000; i++)
    big[i] = i;
  delete[] big;
  Line *l = new Line[100];
  assert_int_equal (reinterpret_cast<uintptr_t> (l) % 64, 0);
  PageObj *p = new PageObj;
  assert_int_equal (reinterpret_cast<uintptr_t> (p) % 4096, 0);
  assert_true (malloc_usable_size (p) >= sizeof (PageObj));
  std::memset (p->b, 7, sizeof p->b);
  PageObj *pa = new PageObj[3];
  assert_int_equal (reinterpret_cast<uintptr_t> (pa) % 4096, 0);
  assert_int_equal (used_chunks (), base + 3);
  delete[] l;
  delete p;
  delete[] pa;
  assert_int_equal (used_chunks (), base);
  assert_int_equal (mmstats (NULL).bytes_used, before.bytes_used);
}

void
bad_alloc_and_nothrow (void **)
{
  std::size_t base = used_chunks ();
  bool thrown = false;
  try
    {
      volatile std::size_t huge = (std::size_t) 1 << 50;
      char *c = new char[huge];
      c[0] = 1;
      delete[] c;
    }
  catch (const std::bad_alloc &)
    {
      thrown = true;
    }
  assert_true (thrown);
  volatile std::size_t huge = SIZE_MAX / 4;
  char *c = new (std::nothrow) char[huge];
  assert_null (c);
  Line *a = new (std::nothrow) Line;
  assert_non_null (a);
  assert_int_equal (reinterpret_cast<uintptr_t> (a) % 64, 0);
  delete a;
  assert_int_equal (used_chunks (), base);
}

void
containers_strings_streams (void **)
{
  std::size_t base = used_chunks ();
  {
    std::map<std::string, std::vector<int>> m;
    std::unordered_map<int, std::string> u;
    for (int i = 0; i < 20000; i++)
      {
	std::string k = "key-" + std::to_string (i * 7919 % 20000) + std::string (i % 50, 'x');
	m[k].push_back (i);
	u[i] = k;
      }
    assert_int_equal (m.size (), 20000);
    assert_true (used_chunks () > base + 40000);
    std::ostringstream os;
    for (auto &kv : m)
      os << kv.first.size () << ':' << kv.second[0] << ';';
    std::string s = os.str ();
    assert_true (s.size () > 100000);
    std::vector<std::shared_ptr<std::string>> shared;
    for (int i = 0; i < 5000; i++)
      shared.push_back (std::make_shared<std::string> (200, char ('a' + i % 26)));
    std::vector<std::unique_ptr<Node>> owned;
    for (int i = 0; i < 5000; i++)
      owned.emplace_back (new Node ());
  }
  assert_int_equal (used_chunks (), base);
}

void
exceptions_allocate_through_malloc (void **)
{
  std::size_t base = used_chunks ();
  int caught = 0;
  for (int i = 0; i < 20000; i++)
    {
      try
	{
	  throw std::runtime_error (std::string (100 + i % 300, 'e'));
	}
      catch (const std::runtime_error &e)
	{
	  if (std::strlen (e.what ()) == (std::size_t) (100 + i % 300))
	    caught++;
	}
    }
  assert_int_equal (caught, 20000);
  assert_int_equal (used_chunks (), base);
}

thread_local std::vector<std::string> tls_strings;

void
threads_and_thread_locals (void **)
{
  // A first round of threads: the C library keeps what it made for them
  // (its stack cache, with their TLS vectors).
  {
    std::vector<std::thread> warm;
    for (int t = 0; t < 8; t++)
      warm.emplace_back ([] { tls_strings.push_back ("warm"); });
    for (auto &t : warm)
      t.join ();
  }
  std::size_t base = used_chunks ();
  std::vector<std::vector<Node *>> made (8);
  std::vector<std::thread> ts;
  ts.reserve (8);
  for (int t = 0; t < 8; t++)
    ts.emplace_back ([t, &made] {
      for (int i = 0; i < 2000; i++)
	{
	  tls_strings.push_back (std::string (50 + i % 100, char ('a' + t)));
	  made[t].push_back (new Node);
	}
      for (int i = 0; i < 1000; i++)
	{
	  delete made[t].back ();
	  made[t].pop_back ();
	}
    });
  for (auto &t : ts)
    t.join ();
  // The threads and their thread_local strings are gone; 1000 Nodes each
  // are still live, in made: freed here, by another thread than their maker.
  for (auto &v : made)
    {
      assert_int_equal (v.size (), 1000);
      for (Node *n : v)
	delete n;
      v.clear ();
      v.shrink_to_fit ();
    }
  assert_int_equal (used_chunks (), base + 2);	// made's and ts's arrays
  assert_int_equal (mmalloc_check (NULL), 0);
}

}				// namespace

int
main ()
{
  mt_require_preload ();
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (new_and_delete_reach_mmalloc),
    cmocka_unit_test (arrays_and_aligned_new),
    cmocka_unit_test (bad_alloc_and_nothrow),
    cmocka_unit_test (containers_strings_streams),
    cmocka_unit_test (exceptions_allocate_through_malloc),
    cmocka_unit_test (threads_and_thread_locals),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
