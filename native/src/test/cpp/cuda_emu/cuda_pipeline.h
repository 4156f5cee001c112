// Emulation stand-in for <cuda_pipeline.h> (cp.async primitives). Copies are deferred until the issuing thread waits
// for their group (__pipeline_wait_prior), as on the GPU where nothing but that wait makes them land: a kernel that
// reads a stage before waiting, or waits for the wrong number of groups, reads stale data here instead of by luck.
// A barrier does not complete copies (it does not on the GPU either).
#pragma once
#include "emu.h"

inline void __pipeline_memcpy_async(void* dst, const void* src, size_t bytes, size_t zfill = 0) {
  emu::check_aligned(dst, bytes, "__pipeline_memcpy_async destination");
  emu::check_aligned(src, bytes, "__pipeline_memcpy_async source");
  if (!(bytes == 4 || bytes == 8 || bytes == 16) || zfill > bytes) {
    std::fprintf(stderr, "emu: __pipeline_memcpy_async size %zu zfill %zu\n", bytes, zfill);
    std::abort();
  }
  emu::State& s = emu::st();
  s.open_group[s.cur].push_back({dst, src, bytes, zfill});
}

inline void __pipeline_commit() {
  emu::State& s = emu::st();
  s.committed[s.cur].push_back(std::move(s.open_group[s.cur]));
  s.open_group[s.cur].clear();
}

inline void __pipeline_wait_prior(size_t prior) {
  emu::State& s = emu::st();
  auto& q = s.committed[s.cur];
  while (q.size() > prior) {
    for (const auto& c : q.front()) {
      std::memcpy(c.dst, c.src, c.bytes - c.zfill);
      std::memset(static_cast<char*>(c.dst) + (c.bytes - c.zfill), 0, c.zfill);
    }
    q.erase(q.begin());
  }
}
