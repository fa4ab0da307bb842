// native/src/kernels.cc — the C++ versions of tallydb's hot loops (src/native/kernels.ts has the TypeScript
// versions, with identical signatures and results; src/native/index.ts is the only loader).
//
// Invariant: a kernel never reads or writes outside the typed arrays it was given. Every row id and every computed
// index is checked against the array it indexes; a bad one throws a RangeError (as the TypeScript versions do),
// so a damaged or crafted input costs an error, never memory. The kernels hold no state and allocate only their
// result arrays. (Two functions here are not kernels: adjustExternalMemory and populate, at the end.)
#include <napi.h>

#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kBlock = 128;

struct U32 { const uint32_t* p = nullptr; size_t n = 0; };
struct F64 { double* p = nullptr; size_t n = 0; };

bool Fail(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

// Damage found while decoding a column: a plain Error, as src/segment/bitpack.ts throws.
bool DecodeFail(Napi::Env env, const std::string& msg) {
  Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

bool TypeFail(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

// A typed array argument of element type T (napi type `kind`, JavaScript name `name`), or a TypeError.
template <typename T, typename View>
bool GetTyped(const Napi::Value& v, View* out, napi_typedarray_type kind, const char* name, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind) {
    return TypeFail(v.Env(), std::string(what) + " must be a " + name);
  }
  auto a = v.As<Napi::TypedArrayOf<T>>();
  out->p = a.Data();
  out->n = a.ElementLength();
  return true;
}

bool GetU32(const Napi::Value& v, U32* out, const char* what) {
  return GetTyped<uint32_t>(v, out, napi_uint32_array, "Uint32Array", what);
}

bool GetF64(const Napi::Value& v, F64* out, const char* what) {
  return GetTyped<double>(v, out, napi_float64_array, "Float64Array", what);
}

bool GetNumber(const Napi::Value& v, double* out, const char* what) {
  if (!v.IsNumber()) return TypeFail(v.Env(), std::string(what) + " must be a number");
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

// Rows [start, end) of `rows`, or the row ids start..end-1 themselves when rows is null: the selection every
// kernel takes. Checked against `limit` (the length of the columns it will index).
struct Selection {
  const uint32_t* rows = nullptr;
  size_t start = 0, end = 0;
  size_t size() const { return end - start; }
};

// Calls f(row) for each selected row until it returns false; one loop per selection kind, so neither branches per row.
template <typename F>
bool ForEach(const Selection& sel, F f) {
  if (sel.rows == nullptr) {
    for (size_t r = sel.start; r < sel.end; r++) {
      if (!f(static_cast<uint32_t>(r))) return false;
    }
  } else {
    for (size_t j = sel.start; j < sel.end; j++) {
      if (!f(sel.rows[j])) return false;
    }
  }
  return true;
}

bool GetSelection(const Napi::CallbackInfo& info, size_t at, size_t limit, Selection* sel) {
  Napi::Env env = info.Env();
  double start, end;
  if (!GetNumber(info[at + 1], &start, "start") || !GetNumber(info[at + 2], &end, "end")) return false;
  if (!(start >= 0) || !(end >= start) || start != std::floor(start) || end != std::floor(end)) {
    return Fail(env, "selection bounds must be integers with 0 <= start <= end");
  }
  sel->start = static_cast<size_t>(start);
  sel->end = static_cast<size_t>(end);
  if (info[at].IsNull() || info[at].IsUndefined()) {
    if (sel->end > limit) return Fail(env, "row range ends past the column");
    return true;
  }
  U32 rows;
  if (!GetU32(info[at], &rows, "rows")) return false;
  if (sel->end > rows.n) return Fail(env, "selection ends past the row list");
  for (size_t j = sel->start; j < sel->end; j++) {
    if (rows.p[j] >= limit) return Fail(env, "row id past the column");
  }
  sel->rows = rows.p;
  return true;
}

// ---- column decode: frame-of-reference bit packing (docs/format/segment.md#bit-packed-columns) -------------

struct Packed {
  const uint8_t* buf;
  const uint8_t* end;
  uint32_t n, blocks;
  size_t basesAt, headerBytes, words;
};

bool ParsePacked(Napi::Env env, const uint8_t* buf, size_t len, Packed* p) {
  if (len < 4) return DecodeFail(env, "bit-packed column is shorter than its header");
  uint32_t n;
  std::memcpy(&n, buf, 4);
  uint32_t blocks = static_cast<uint32_t>((static_cast<uint64_t>(n) + kBlock - 1) / kBlock);
  size_t basesAt = 4 + ((static_cast<size_t>(blocks) + 3) & ~static_cast<size_t>(3));
  size_t headerBytes = basesAt + 4 * static_cast<size_t>(blocks);
  if (len < headerBytes) return DecodeFail(env, "bit-packed column is shorter than its block table");
  size_t words = 0;
  for (uint32_t b = 0; b < blocks; b++) words += 4 * static_cast<size_t>(buf[4 + b]);
  if (len != headerBytes + 4 * words) {
    return DecodeFail(env, "bit-packed column is " + std::to_string(len) + " bytes; its block table says " +
                         std::to_string(headerBytes + 4 * words));
  }
  *p = Packed{buf, buf + len, n, blocks, basesAt, headerBytes, words};
  return true;
}

// The value at bit `bit` of a block's words starting at `w`: 8 bytes read little-endian (a value spans at most 5
// bytes past its first), or only what is left near the end of the buffer.
inline uint32_t PackedAt(const uint8_t* w, uint64_t bit, uint64_t mask, const uint8_t* end) {
  uint64_t v = 0;
  const uint8_t* src = w + (bit >> 3);
  if (src + 8 <= end) std::memcpy(&v, src, 8);
  else std::memcpy(&v, src, static_cast<size_t>(end - src));
  return static_cast<uint32_t>((v >> (bit & 7)) & mask);
}

// A zigzag-coded delta as a double (2d for d ≥ 0, −2d − 1 below).
inline double UnzigzagF64(uint32_t z) {
  return (z & 1) == 0 ? static_cast<double>(z >> 1) : -(static_cast<double>(z) + 1) / 2;
}

// Unpacks into out[0..n); calls emit(i, value) in order when given. Returns false (with an exception) on damage.
template <typename Emit>
bool Unpack(Napi::Env env, const Packed& p, Emit emit) {
  const uint8_t* words = p.buf + p.headerBytes;
  size_t at = 0;  // in u32 words
  for (uint32_t b = 0; b < p.blocks; b++) {
    uint32_t width = p.buf[4 + b];
    if (width > 32) return DecodeFail(env, "bit-packed block " + std::to_string(b) + " has width " + std::to_string(width));
    uint32_t base;
    std::memcpy(&base, p.buf + p.basesAt + 4 * static_cast<size_t>(b), 4);
    uint32_t begin = b * kBlock;
    uint32_t end = std::min<uint64_t>(p.n, static_cast<uint64_t>(b + 1) * kBlock);
    if (width == 0) {
      for (uint32_t i = begin; i < end; i++) emit(i, base);
      continue;
    }
    const uint64_t mask = width == 32 ? 0xffffffffull : ((1ull << width) - 1);
    const uint8_t* w = words + 4 * at;
    uint64_t bit = 0;
    for (uint32_t i = begin; i < end; i++) {
      emit(i, PackedAt(w, bit, mask, p.end) + base);
      bit += width;
    }
    at += 4 * static_cast<size_t>(width);
  }
  return true;
}

bool GetBytes(const Napi::Value& v, const uint8_t** data, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return TypeFail(v.Env(), "buf must be a Uint8Array");
  }
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

// A bit-packed column argument: a Uint8Array (TypeError otherwise) whose header and block table are whole (Error).
bool GetPacked(const Napi::Value& v, Packed* p) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  return GetBytes(v, &data, &len) && ParsePacked(v.Env(), data, len, p);
}

// unpack(buf: Uint8Array): Uint32Array
Napi::Value UnpackU32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Packed p;
  if (!GetPacked(info[0], &p)) return env.Undefined();
  auto out = Napi::Uint32Array::New(env, p.n);
  uint32_t* o = out.Data();
  if (!Unpack(env, p, [o](uint32_t i, uint32_t v) { o[i] = v; })) return env.Undefined();
  return out;
}

// decodeTimestamps(buf: Uint8Array, minTs: number, rows: number): Float64Array — zigzag deltas, prefix-summed.
Napi::Value DecodeTimestamps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double minTs, rows;
  Packed p;
  if (!GetPacked(info[0], &p) || !GetNumber(info[1], &minTs, "minTs") || !GetNumber(info[2], &rows, "rows")) {
    return env.Undefined();
  }
  if (static_cast<double>(p.n) != rows) {
    DecodeFail(env, "column holds " + std::to_string(p.n) + " values; the footer says " + std::to_string(static_cast<uint64_t>(rows)) + " rows");
    return env.Undefined();
  }
  auto out = Napi::Float64Array::New(env, p.n);
  double* o = out.Data();
  bool ok;
  if (minTs == std::floor(minTs) && std::fabs(minTs) < 9007199254740992.0) {
    // Integer timestamps (the usual case): an integer prefix sum, whose add is one cycle of latency.
    int64_t t = static_cast<int64_t>(minTs);
    ok = Unpack(env, p, [o, &t](uint32_t i, uint32_t z) {
      // Branchless unzigzag: the sign bit of a delta is a coin toss, a branch on it mispredicts half the time.
      t += static_cast<int32_t>((z >> 1) ^ (0u - (z & 1)));
      o[i] = static_cast<double>(t);
    });
  } else {
    double t = minTs;
    ok = Unpack(env, p, [o, &t](uint32_t i, uint32_t z) {
      t += UnzigzagF64(z);
      o[i] = t;
    });
  }
  if (!ok) return env.Undefined();
  return out;
}

// timestampAnchors(buf: Uint8Array, minTs: number): Float64Array — per block of 128 rows, the timestamp before its
// first row (the prefix sum so far), so that timestampsAt can decode any block on its own.
Napi::Value TimestampAnchors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double minTs;
  Packed p;
  if (!GetPacked(info[0], &p) || !GetNumber(info[1], &minTs, "minTs")) return env.Undefined();
  auto out = Napi::Float64Array::New(env, p.blocks);
  double* o = out.Data();
  double t = minTs;
  bool ok = Unpack(env, p, [o, &t](uint32_t i, uint32_t z) {
    if ((i & (kBlock - 1)) == 0) o[i / kBlock] = t;
    t += UnzigzagF64(z);
  });
  if (!ok) return env.Undefined();
  return out;
}

// A bit-packed timestamp column with its anchors (the timestamp before each block's first row), so that any block
// decodes on its own. Parsed in the order the TypeScript version checks: anchors' type, the column, its block
// widths, the anchors' length.
struct AnchoredTimestamps {
  Packed p;
  F64 anchors;
  std::vector<size_t> wordAt;  // each block's first word

  bool Parse(const Napi::Value& buf, const Napi::Value& anchorsArg) {
    Napi::Env env = buf.Env();
    if (!GetF64(anchorsArg, &anchors, "anchors") || !GetPacked(buf, &p)) return false;
    wordAt.resize(p.blocks);
    size_t at = 0;
    for (uint32_t b = 0; b < p.blocks; b++) {
      uint32_t width = p.buf[4 + b];
      if (width > 32) return DecodeFail(env, "bit-packed block " + std::to_string(b) + " has width " + std::to_string(width));
      wordAt[b] = at;
      at += 4 * static_cast<size_t>(width);
    }
    if (anchors.n != p.blocks) return Fail(env, "anchors do not match the column's blocks");
    return true;
  }

  // The timestamps of block b's rows into out[0..count).
  void Block(uint32_t b, double* out) const {
    uint32_t width = p.buf[4 + b];
    uint32_t base;
    std::memcpy(&base, p.buf + p.basesAt + 4 * static_cast<size_t>(b), 4);
    uint32_t count = static_cast<uint32_t>(std::min<uint64_t>(p.n - static_cast<uint64_t>(b) * kBlock, kBlock));
    const uint64_t mask = width == 32 ? 0xffffffffull : ((1ull << width) - 1);
    const uint8_t* w = p.buf + p.headerBytes + 4 * wordAt[b];
    double a = anchors.p[b];
    if (a == std::floor(a) && std::fabs(a) < 4503599627370496.0) {
      // Integer anchor (the usual case): an integer prefix sum, exact and equal to the double one (128 deltas
      // below 2^31 keep every partial sum below 2^53), with a one-cycle add and a branchless unzigzag.
      int64_t t = static_cast<int64_t>(a);
      uint64_t bit = 0;
      for (uint32_t i = 0; i < count; i++) {
        uint32_t z = base;
        if (width != 0) {
          z = PackedAt(w, bit, mask, p.end) + base;
          bit += width;
        }
        t += static_cast<int64_t>(static_cast<int32_t>((z >> 1) ^ (0u - (z & 1))));
        out[i] = static_cast<double>(t);
      }
      return;
    }
    double t = a;
    uint64_t bit = 0;
    for (uint32_t i = 0; i < count; i++) {
      uint32_t z = base;
      if (width != 0) {
        z = PackedAt(w, bit, mask, p.end) + base;
        bit += width;
      }
      t += UnzigzagF64(z);
      out[i] = t;
    }
  }

  // Calls f(ts, n) with the timestamps of the selected rows in selection order, a chunk of at most one block's
  // rows at a time, decoding each block it needs once per run of rows in it; stops when f returns false.
  template <typename F>
  bool ForEachChunk(const Selection& sel, F f) const {
    double block[kBlock];
    if (sel.rows == nullptr) {
      for (size_t r = sel.start; r < sel.end;) {
        uint32_t b = static_cast<uint32_t>(r / kBlock);
        Block(b, block);
        size_t stop = std::min<size_t>(sel.end, (static_cast<size_t>(b) + 1) * kBlock);
        if (!f(block + r % kBlock, stop - r)) return false;
        r = stop;
      }
      return true;
    }
    double chunk[kBlock];
    size_t k = 0;
    uint32_t current = UINT32_MAX;
    for (size_t j = sel.start; j < sel.end; j++) {
      uint32_t r = sel.rows[j];
      uint32_t b = r / kBlock;
      if (b != current) {
        current = b;
        Block(b, block);
      }
      chunk[k++] = block[r % kBlock];
      if (k == kBlock) {
        if (!f(chunk, k)) return false;
        k = 0;
      }
    }
    return k == 0 || f(chunk, k);
  }
};

// timestampsAt(buf, anchors, rows | null, start, end): Float64Array — the timestamps of the selected rows, in
// selection order, decoding only the blocks that hold them (a selective query on a large segment reads a few
// blocks instead of decoding the whole column).
Napi::Value TimestampsAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AnchoredTimestamps col;
  Selection sel;
  if (!col.Parse(info[0], info[1]) || !GetSelection(info, 2, col.p.n, &sel)) return env.Undefined();
  auto out = Napi::Float64Array::New(env, sel.size());
  double* o = out.Data();
  col.ForEachChunk(sel, [&](const double* t, size_t n) {
    std::memcpy(o, t, n * sizeof(double));
    o += n;
    return true;
  });
  return out;
}

// ---- aggregation over a selection ---------------------------------------------------------------------------

// floor(t / size) exactly, via a multiply and a correction step (a division per row costs ~4× more).
inline double FloorDiv(double t, double size, double inv) {
  double x = t * inv;
  // floor without a libm call: truncate, then step down for negatives (|x| < 2^53 / 60 here).
  double q = static_cast<double>(static_cast<int64_t>(x));
  if (q > x) q -= 1;
  if (q * size > t) q -= 1;
  else if ((q + 1) * size <= t) q += 1;
  return q;
}

// Adds interleaved counter lanes (kLanes u32 counters per counter, see BucketCounter) into `counts`.
constexpr size_t kLanes = 4;
void FoldLanes(const std::vector<uint32_t>& lanes, F64 counts) {
  for (size_t k = 0; k < counts.n; k++) {
    uint32_t c = lanes[k * kLanes] + lanes[k * kLanes + 1] + lanes[k * kLanes + 2] + lanes[k * kLanes + 3];
    if (c != 0) counts.p[k] += c;
  }
}

// counts[floor(t / size) − first] += 1 for one timestamp t at a time (bucketCounts, bucketCountsAt).
//
// Four interleaved u32 counter lanes: consecutive rows that hit one bucket then do not wait for each other's store
// (a load-add-store chain on one counter costs ~5 cycles a row); the lanes are folded into `counts` by Fold. Rows
// of a sorted segment alternate between buckets unpredictably, so a branch on "same bucket as before" does not
// pay. Many buckets (fine granularity over a long range) or odd sizes count straight into `counts`.
class BucketCounter {
 public:
  // Takes size, first and counts from info[at], info[at + 1], info[at + 2], for at most `rows` timestamps.
  bool Init(const Napi::CallbackInfo& info, size_t at, size_t rows) {
    if (!GetNumber(info[at], &size_, "size") || !GetNumber(info[at + 1], &first_, "first") ||
        !GetF64(info[at + 2], &counts_, "counts")) {
      return false;
    }
    if (!(size_ > 0)) return Fail(info.Env(), "bucket size must be positive");
    inv_ = 1.0 / size_;
    limit_ = static_cast<double>(counts_.n);
    const double base = first_ * size_;
    integer_ = counts_.n <= (1u << 16) && rows <= 0xffffffffu && size_ == std::floor(size_) && size_ >= 1 &&
               size_ < 4294967296.0 && std::fabs(base) < 4.0e18 && static_cast<double>(counts_.n) * size_ < 4294967296.0;
    if (integer_) {
      // Integer bucket size (every granularity tallydb has): k = floor(t − base) / size in integers, the division
      // by a multiply with a 64-bit reciprocal (exact for dividends below 2^32), since
      // floor(t / size) − first = floor((floor(t) − base) / size) for integer size and base.
      isize_ = static_cast<uint64_t>(size_);
      m_ = ~0ull / isize_ + 1;  // ceil(2^64 / size) for size > 1; size 1 is the identity
      ibase_ = static_cast<int64_t>(base);
      span_ = static_cast<uint64_t>(counts_.n) * isize_;
      lanes_.assign(kLanes * counts_.n, 0);
    }
    return true;
  }

  // Counts ts[0..n) in order; false when one falls outside the counters (those before it stay counted). The
  // state lives in locals for the loop: kept in members across rows, the lane index went through memory (a
  // store-to-load chain of ~5 cycles a row).
  bool AddAll(const double* ts, size_t n) {
    if (integer_) {
      uint32_t* L = lanes_.data();
      size_t lane = lane_;
      const int64_t ibase = ibase_;
      const uint64_t span = span_, m = m_, isize = isize_;
      bool ok = true;
      for (size_t i = 0; i < n; i++) {
        double t = ts[i];
        if (!(std::fabs(t) < 4.0e18)) {
          ok = false;
          break;
        }
        int64_t ti = static_cast<int64_t>(t);
        if (static_cast<double>(ti) > t) ti -= 1;  // floor for negatives
        uint64_t d = static_cast<uint64_t>(ti - ibase);
        if (d >= span) {  // below base wraps around to a huge value
          ok = false;
          break;
        }
        uint64_t k = isize == 1 ? d : static_cast<uint64_t>((static_cast<unsigned __int128>(d) * m) >> 64);
        L[k * kLanes + lane]++;
        lane = (lane + 1) & (kLanes - 1);
      }
      lane_ = lane;
      return ok;
    }
    for (size_t i = 0; i < n; i++) {
      double k = FloorDiv(ts[i], size_, inv_) - first_;
      if (!(k >= 0 && k < limit_)) return false;
      counts_.p[static_cast<size_t>(k)] += 1;
    }
    return true;
  }

  // Adds the lanes into `counts`; called also when a bad timestamp stopped the rows, which leaves what was counted
  // before it (as the TypeScript version does).
  void Fold() {
    if (integer_) FoldLanes(lanes_, counts_);
  }

 private:
  double size_ = 0, first_ = 0, inv_ = 0, limit_ = 0;
  F64 counts_;
  bool integer_ = false;
  uint64_t isize_ = 1, m_ = 0, span_ = 0;
  int64_t ibase_ = 0;
  std::vector<uint32_t> lanes_;
  size_t lane_ = 0;
};

// bucketCounts(ts, rows | null, start, end, size, first, counts): counts[floor(ts[r] / size) − first] += 1.
Napi::Value BucketCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F64 ts;
  Selection sel;
  BucketCounter counter;
  if (!GetF64(info[0], &ts, "ts") || !GetSelection(info, 1, ts.n, &sel) || !counter.Init(info, 4, sel.size())) {
    return env.Undefined();
  }
  bool ok;
  if (sel.rows == nullptr) {
    ok = counter.AddAll(ts.p + sel.start, sel.size());
  } else {
    // Gathered a chunk at a time, so that the counting loop runs over contiguous values.
    double chunk[kBlock];
    size_t k = 0;
    ok = ForEach(sel, [&](uint32_t r) {
      chunk[k++] = ts.p[r];
      if (k < kBlock) return true;
      k = 0;
      return counter.AddAll(chunk, kBlock);
    });
    if (ok && k > 0) ok = counter.AddAll(chunk, k);
  }
  counter.Fold();
  if (!ok) Fail(env, "a timestamp falls outside the bucket counters");
  return env.Undefined();
}

// bucketCountsAt(buf, anchors, rows | null, start, end, size, first, counts): bucketCounts of the selected rows'
// timestamps read from the bit-packed column as timestampsAt reads them, without materializing them (clicks per
// minute over segments whose decoded timestamps would not fit the cache).
Napi::Value BucketCountsAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AnchoredTimestamps col;
  Selection sel;
  BucketCounter counter;
  if (!col.Parse(info[0], info[1]) || !GetSelection(info, 2, col.p.n, &sel) || !counter.Init(info, 5, sel.size())) {
    return env.Undefined();
  }
  bool ok = col.ForEachChunk(sel, [&](const double* t, size_t n) { return counter.AddAll(t, n); });
  counter.Fold();
  if (!ok) Fail(env, "a timestamp falls outside the bucket counters");
  return env.Undefined();
}

// selectTimeRange(ts, rows | null, start, end, from, to): Uint32Array — the selected rows with from <= ts < to.
Napi::Value SelectTimeRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  F64 ts;
  double from, to;
  Selection sel;
  if (!GetF64(info[0], &ts, "ts") || !GetSelection(info, 1, ts.n, &sel) || !GetNumber(info[4], &from, "from") ||
      !GetNumber(info[5], &to, "to")) {
    return env.Undefined();
  }
  std::vector<uint32_t> keep;
  keep.reserve(sel.size() / 4 + 16);
  ForEach(sel, [&](uint32_t r) {
    double t = ts.p[r];
    if (t >= from && t < to) keep.push_back(r);
    return true;
  });
  auto out = Napi::Uint32Array::New(env, keep.size());
  if (!keep.empty()) std::memcpy(out.Data(), keep.data(), keep.size() * 4);
  return out;
}

// countByCode(codes, rows | null, start, end, table, counts): counts[table[codes[r]]] += 1 — rows per minute from a
// segment's minute column (a byte or two a row) instead of its timestamps.
// A codes argument: a Uint8Array or a Uint16Array (TypeError otherwise).
struct Codes {
  const uint8_t* u8 = nullptr;
  const uint16_t* u16 = nullptr;
  size_t n = 0;
  uint32_t At(uint32_t r) const { return u8 != nullptr ? u8[r] : u16[r]; }
};

bool GetCodes(const Napi::Value& v, Codes* out) {
  napi_typedarray_type kind = v.IsTypedArray() ? v.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
  if (kind == napi_uint8_array) out->u8 = v.As<Napi::Uint8Array>().Data();
  else if (kind == napi_uint16_array) out->u16 = v.As<Napi::Uint16Array>().Data();
  else return TypeFail(v.Env(), "codes must be a Uint8Array or a Uint16Array");
  out->n = v.As<Napi::TypedArray>().ElementLength();
  return true;
}

template <typename Code>
bool CountCodes(const Code* codes, const Selection& sel, const U32& table, F64 counts) {
  // The interleaved counter lanes of BucketCounter, for the same reason; few counters (the buckets of one query).
  const size_t limit = counts.n;
  if (limit > (1u << 16) || sel.size() > 0xffffffffu) {
    return ForEach(sel, [&](uint32_t r) {
      Code c = codes[r];
      if (c >= table.n) return false;
      uint32_t k = table.p[c];
      if (k >= limit) return false;
      counts.p[k] += 1;
      return true;
    });
  }
  std::vector<uint32_t> lanes(kLanes * limit, 0);
  uint32_t* L = lanes.data();
  size_t lane = 0;
  bool ok = ForEach(sel, [&](uint32_t r) {
    Code c = codes[r];
    if (c >= table.n) return false;
    uint32_t k = table.p[c];
    if (k >= limit) return false;
    L[k * kLanes + lane]++;
    lane = (lane + 1) & (kLanes - 1);
    return true;
  });
  // What was counted before a bad row stays counted, as in the TypeScript version.
  FoldLanes(lanes, counts);
  return ok;
}

Napi::Value CountByCode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Codes codes;
  U32 table;
  F64 counts;
  Selection sel;
  if (!GetCodes(info[0], &codes) || !GetU32(info[4], &table, "table") || !GetSelection(info, 1, codes.n, &sel) ||
      !GetF64(info[5], &counts, "counts")) {
    return env.Undefined();
  }
  bool ok = codes.u8 != nullptr ? CountCodes(codes.u8, sel, table, counts) : CountCodes(codes.u16, sel, table, counts);
  if (!ok) {
    // Which bound the first bad row broke, as the TypeScript version reports it.
    bool codeBad = false;
    ForEach(sel, [&](uint32_t r) {
      uint32_t c = codes.At(r);
      if (c >= table.n) {
        codeBad = true;
        return false;
      }
      return table.p[c] < counts.n;
    });
    Fail(env, codeBad ? "a code falls outside the table" : "a key falls outside the counters");
  }
  return env.Undefined();
}

// selectCodeRange(codes, rows | null, start, end, lo, hi): Uint32Array — the selected rows with lo <= codes[r] < hi
// (a segment's rows in a range of minutes, by its minute column).
template <typename Code>
void SelectCodes(const Code* codes, const Selection& sel, double lo, double hi, std::vector<uint32_t>* keep) {
  ForEach(sel, [&](uint32_t r) {
    double c = codes[r];
    if (c >= lo && c < hi) keep->push_back(r);
    return true;
  });
}

Napi::Value SelectCodeRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Codes codes;
  Selection sel;
  double lo, hi;
  if (!GetCodes(info[0], &codes) || !GetSelection(info, 1, codes.n, &sel) || !GetNumber(info[4], &lo, "lo") ||
      !GetNumber(info[5], &hi, "hi")) {
    return env.Undefined();
  }
  std::vector<uint32_t> keep;
  keep.reserve(sel.size() / 4 + 16);
  if (codes.u8 != nullptr) SelectCodes(codes.u8, sel, lo, hi, &keep);
  else SelectCodes(codes.u16, sel, lo, hi, &keep);
  auto out = Napi::Uint32Array::New(env, keep.size());
  if (!keep.empty()) std::memcpy(out.Data(), keep.data(), keep.size() * 4);
  return out;
}

// The arguments countByKey and countFirstMet share: keys, a selection of them, weights (null, or one a key at least)
// and the counters.
struct KeyCounts {
  U32 keys;
  F64 weights, counts;
  Selection sel;
  bool weighted = false;
};

bool GetKeyCounts(const Napi::CallbackInfo& info, KeyCounts* a) {
  if (!GetU32(info[0], &a->keys, "keys") || !GetSelection(info, 1, a->keys.n, &a->sel) || !GetF64(info[5], &a->counts, "counts")) {
    return false;
  }
  a->weighted = !(info[4].IsNull() || info[4].IsUndefined());
  if (!a->weighted) return true;
  if (!GetF64(info[4], &a->weights, "weights")) return false;
  if (a->weights.n < a->keys.n) return Fail(info.Env(), "weights are shorter than keys");
  return true;
}

// countByKey(keys, rows | null, start, end, weights | null, counts): counts[keys[r]] += weights ? weights[r] : 1.
Napi::Value CountByKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KeyCounts a;
  if (!GetKeyCounts(info, &a)) return env.Undefined();
  const size_t limit = a.counts.n;
  bool ok = a.weighted ? ForEach(a.sel, [&](uint32_t r) {
    uint32_t k = a.keys.p[r];
    if (k >= limit) return false;
    a.counts.p[k] += a.weights.p[r];
    return true;
  }) : ForEach(a.sel, [&](uint32_t r) {
    uint32_t k = a.keys.p[r];
    if (k >= limit) return false;
    a.counts.p[k] += 1;
    return true;
  });
  if (!ok) Fail(env, "a key falls outside the counters");
  return env.Undefined();
}

// countFirstMet(keys, rows | null, start, end, weights | null, counts, out): number — countByKey, and each key whose
// counter was 0 when its row came is written to out, in the order met; returns how many were written (with weights
// > 0: the distinct keys of the rows, each once). out must hold end − start keys. Branch-free: every row's key is
// written at the next free position, which advances only when the counter was 0.
Napi::Value CountFirstMet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KeyCounts a;
  if (!GetKeyCounts(info, &a)) return env.Undefined();
  if (!info[6].IsTypedArray() || info[6].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    TypeFail(env, "out must be a Uint32Array");
    return env.Undefined();
  }
  auto outArray = info[6].As<Napi::Uint32Array>();
  if (outArray.ElementLength() < a.sel.size()) {
    Fail(env, "out is shorter than the selection");
    return env.Undefined();
  }
  uint32_t* out = outArray.Data();
  const size_t limit = a.counts.n;
  size_t met = 0;
  auto count = [&](uint32_t r, double w) {
    uint32_t k = a.keys.p[r];
    if (k >= limit) return false;
    double c = a.counts.p[k];
    out[met] = k;
    met += c == 0 ? 1 : 0;
    a.counts.p[k] = c + w;
    return true;
  };
  bool ok = a.weighted ? ForEach(a.sel, [&](uint32_t r) { return count(r, a.weights.p[r]); })
                       : ForEach(a.sel, [&](uint32_t r) { return count(r, 1); });
  if (!ok) {
    Fail(env, "a key falls outside the counters");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(met));
}

// The number of slots of an open-addressing table of `length` int32 words, `words` a slot (dedupChunk, dedupMove,
// probeSlots): a power of two, at most maxSlots; or 0 after a RangeError.
size_t SlotCount(Napi::Env env, size_t length, size_t words, size_t maxSlots, const char* name) {
  const size_t capacity = length / words;
  if (length % words != 0 || capacity == 0 || (capacity & (capacity - 1)) != 0 || capacity > maxSlots) {
    Fail(env, std::string(name) + " must hold " + std::to_string(words) + " words a slot, a power of two of slots");
    return 0;
  }
  return capacity;
}

bool CheckInt32(Napi::Env env, double x, const char* name) {
  if (!(x >= -2147483648.0 && x <= 2147483647.0) || x != std::trunc(x)) return Fail(env, std::string(name) + " must be an int32");
  return true;
}

// Bring the home slot of row r's key (3 words, which may straddle two cache lines) into cache. A function, not a
// lambda: GCC 12 dropped the prefetches of the same code written as a lambda.
inline __attribute__((always_inline)) void PrefetchHome(const int32_t* slots, const uint32_t* h, size_t r, uint32_t mask) {
  const size_t at = 3 * static_cast<size_t>((h[2 * r] ^ h[2 * r + 1]) & mask);
  __builtin_prefetch(slots + at, 0, 3);
  __builtin_prefetch(slots + at + 2, 0, 3);
}

struct DedupRun {
  size_t decided = 0, duplicates = 0, stored = 0;
  int32_t sub = 0;
  bool full = false, badTime = false;
};

// The loop of dedupChunk, apart from its argument checks (so that its state stays in registers).
DedupRun DedupChunkLoop(int32_t* slots, uint32_t mask, int32_t floor, const uint32_t* h, const double* ts, size_t from, size_t to,
                        double subMs, double base, uint32_t* dup) {
  // Each row's home slot is brought into cache kPrefetchAhead rows before it is probed: the misses of a table of
  // megabytes overlap, where a probe waiting for each in turn would serialize them.
  constexpr size_t kPrefetchAhead = 24;
  for (size_t r = from; r < to && r < from + kPrefetchAhead; r++) PrefetchHome(slots, h, r, mask);
  // The sub-window of the last time divided, for the times of its range [low, high): for an integral subMs and
  // 0 <= t < high <= 2^53, floor(t / subMs) (IEEE) is the same for every t of the range, so it is not divided again.
  const bool cacheable = subMs >= 1 && subMs == std::trunc(subMs);
  double low = 1, high = 0;
  int32_t cached = 0;
  DedupRun run;
  size_t r = from;
  for (; r < to; r++) {
    if (r + kPrefetchAhead < to) PrefetchHome(slots, h, r + kPrefetchAhead, mask);
    const int32_t hi = static_cast<int32_t>(h[2 * r]);
    const int32_t lo = static_cast<int32_t>(h[2 * r + 1]);
    uint32_t i = (h[2 * r] ^ h[2 * r + 1]) & mask;
    bool found = false;
    for (size_t steps = 0;; steps++) {
      if (steps > mask) {
        run.full = true;
        run.decided = r - from;
        return run;
      }
      const int32_t s = slots[3 * static_cast<size_t>(i) + 2];
      if (s == 0) break;
      if (slots[3 * static_cast<size_t>(i)] == hi && slots[3 * static_cast<size_t>(i) + 1] == lo && s >= floor) {
        found = true;
        break;
      }
      i = (i + 1) & mask;
    }
    if (found) {
      dup[run.duplicates++] = static_cast<uint32_t>(r);
      continue;
    }
    const double t = ts[r];
    int32_t sub;
    if (t >= low && t < high) {
      sub = cached;
    } else {
      const double q = std::floor(t / subMs);
      double v = q - base + 1073741826.0;
      if (std::isnan(v)) {
        run.badTime = true;
        run.decided = r - from;
        return run;
      }
      v = v < 2 ? 2 : v > 2147483646.0 ? 2147483646.0 : v;
      sub = static_cast<int32_t>(v);
      cached = sub;
      low = q * subMs;
      high = low + subMs;
      if (!(cacheable && low >= 0 && high <= 9007199254740992.0)) {
        low = 1;
        high = 0;
      }
    }
    if (run.stored == 0) run.sub = sub;
    else if (sub != run.sub) break;
    slots[3 * static_cast<size_t>(i)] = hi;
    slots[3 * static_cast<size_t>(i) + 1] = lo;
    slots[3 * static_cast<size_t>(i) + 2] = sub;
    run.stored++;
  }
  run.decided = r - from;
  return run;
}

// dedupChunk(slots, floor, hashes, ts, from, to, subMs, base, duplicates, out): see src/native/kernels.ts.
Napi::Value DedupChunk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) {
    TypeFail(env, "dedupChunk: want 10 arguments");
    return env.Undefined();
  }
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    TypeFail(env, "slots must be an Int32Array");
    return env.Undefined();
  }
  auto slotsArray = info[0].As<Napi::Int32Array>();
  const size_t capacity = SlotCount(env, slotsArray.ElementLength(), 3, 0x80000000u, "slots");
  if (capacity == 0) return env.Undefined();
  double floorD, fromD, toD, subMs, base;
  U32 hashes;
  F64 ts;
  U32 duplicates;
  F64 out;
  if (!GetNumber(info[1], &floorD, "floor") || !GetU32(info[2], &hashes, "hashes") || !GetF64(info[3], &ts, "ts") ||
      !GetNumber(info[4], &fromD, "from") || !GetNumber(info[5], &toD, "to") || !GetNumber(info[6], &subMs, "subMs") ||
      !GetNumber(info[7], &base, "base") || !GetU32(info[8], &duplicates, "duplicates") || !GetF64(info[9], &out, "out")) {
    return env.Undefined();
  }
  if (!CheckInt32(env, floorD, "floor")) return env.Undefined();
  if (!(fromD >= 0) || !(toD >= fromD) || fromD != std::trunc(fromD) || toD != std::trunc(toD) || toD > ts.n || 2 * toD > hashes.n) {
    Fail(env, "rows from..to must lie within ts and hashes");
    return env.Undefined();
  }
  if (duplicates.n < toD - fromD || out.n < 3) {
    Fail(env, "duplicates must hold to - from rows and out 3 numbers");
    return env.Undefined();
  }
  const DedupRun run = DedupChunkLoop(slotsArray.Data(), static_cast<uint32_t>(capacity - 1), static_cast<int32_t>(floorD), hashes.p, ts.p,
                                      static_cast<size_t>(fromD), static_cast<size_t>(toD), subMs, base, const_cast<uint32_t*>(duplicates.p));
  if (run.full) {
    Fail(env, "slots holds no empty slot");
    return env.Undefined();
  }
  if (run.badTime) {
    Fail(env, "a row's sub-window is not a number");
    return env.Undefined();
  }
  out.p[0] = static_cast<double>(run.duplicates);
  out.p[1] = static_cast<double>(run.stored);
  out.p[2] = static_cast<double>(run.sub);
  return Napi::Number::New(env, static_cast<double>(run.decided));
}

// dedupMove(old, from, to, floor, slots): see src/native/kernels.ts.
Napi::Value DedupMove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) {
    TypeFail(env, "dedupMove: want 5 arguments");
    return env.Undefined();
  }
  for (size_t a : {size_t{0}, size_t{4}}) {
    if (!info[a].IsTypedArray() || info[a].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      TypeFail(env, std::string(a == 0 ? "old" : "slots") + " must be an Int32Array");
      return env.Undefined();
    }
  }
  auto oldArray = info[0].As<Napi::Int32Array>();
  auto slotsArray = info[4].As<Napi::Int32Array>();
  double fromD, toD, floorD;
  if (!GetNumber(info[1], &fromD, "from") || !GetNumber(info[2], &toD, "to") || !GetNumber(info[3], &floorD, "floor")) return env.Undefined();
  const size_t capacity = SlotCount(env, slotsArray.ElementLength(), 3, 0x80000000u, "slots");
  if (capacity == 0) return env.Undefined();
  if (!CheckInt32(env, floorD, "floor")) return env.Undefined();
  if (!(fromD >= 0) || !(toD >= fromD) || fromD != std::trunc(fromD) || toD != std::trunc(toD) || 3 * toD > oldArray.ElementLength()) {
    Fail(env, "slots from..to must lie within old");
    return env.Undefined();
  }
  int32_t* old = oldArray.Data();
  int32_t* slots = slotsArray.Data();
  const size_t from = static_cast<size_t>(fromD), to = static_cast<size_t>(toD);
  const int32_t floor = static_cast<int32_t>(floorD);
  const uint32_t mask = static_cast<uint32_t>(capacity - 1);
  // The destination of each live slot is a random place in `slots`: prefetched a few old slots ahead.
  constexpr size_t kAhead = 16;
  const auto home = [&](size_t j) { return 3 * static_cast<size_t>((static_cast<uint32_t>(old[3 * j]) ^ static_cast<uint32_t>(old[3 * j + 1])) & mask); };
  size_t moved = 0;
  for (size_t j = from; j < to; j++) {
    if (j + kAhead < to && old[3 * (j + kAhead) + 2] >= floor) {
      const size_t at = home(j + kAhead);
      __builtin_prefetch(slots + at, 0, 3);
      __builtin_prefetch(slots + at + 2, 0, 3);
    }
    const int32_t s = old[3 * j + 2];
    if (s < floor) continue;
    uint32_t i = static_cast<uint32_t>(home(j) / 3);
    for (size_t steps = 0;; steps++) {
      if (steps > mask) {
        Fail(env, "slots holds no empty slot");
        return env.Undefined();
      }
      if (slots[3 * static_cast<size_t>(i) + 2] == 0) break;
      i = (i + 1) & mask;
    }
    slots[3 * static_cast<size_t>(i)] = old[3 * j];
    slots[3 * static_cast<size_t>(i) + 1] = old[3 * j + 1];
    slots[3 * static_cast<size_t>(i) + 2] = s;
    old[3 * j + 2] = 1;
    moved++;
  }
  return Napi::Number::New(env, static_cast<double>(moved));
}

// probeSlots(table, keys, n, out): see src/native/kernels.ts.
Napi::Value ProbeSlots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) {
    TypeFail(env, "probeSlots: want 4 arguments");
    return env.Undefined();
  }
  for (size_t a : {size_t{0}, size_t{1}, size_t{3}}) {
    if (!info[a].IsTypedArray() || info[a].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      TypeFail(env, std::string(a == 0 ? "table" : a == 1 ? "keys" : "out") + " must be an Int32Array");
      return env.Undefined();
    }
  }
  auto tableArray = info[0].As<Napi::Int32Array>();
  auto keysArray = info[1].As<Napi::Int32Array>();
  auto outArray = info[3].As<Napi::Int32Array>();
  double nD;
  if (!GetNumber(info[2], &nD, "n")) return env.Undefined();
  const size_t capacity = SlotCount(env, tableArray.ElementLength(), 4, 0x20000000u, "table");
  if (capacity == 0) return env.Undefined();
  if (!(nD >= 0) || nD != std::trunc(nD) || 4 * nD > keysArray.ElementLength() || nD > outArray.ElementLength()) {
    Fail(env, "n must be a count of keys within keys and out");
    return env.Undefined();
  }
  const int32_t* t = tableArray.Data();
  const int32_t* k = keysArray.Data();
  int32_t* out = outArray.Data();
  const size_t n = static_cast<size_t>(nD);
  const uint32_t mask = static_cast<uint32_t>(capacity - 1);
  for (size_t v = 0; v < n; v++) {
    if (k[4 * v] >= 0 && static_cast<size_t>(k[4 * v]) >= capacity) {
      Fail(env, "a home slot lies outside the table");
      return env.Undefined();
    }
  }
  // As dedupChunk: each value's home slot is brought into cache a few values before its probe.
  constexpr size_t kAhead = 16;
  for (size_t v = 0; v < n && v < kAhead; v++) {
    if (k[4 * v] >= 0) __builtin_prefetch(t + 4 * static_cast<size_t>(k[4 * v]), 0, 3);
  }
  for (size_t v = 0; v < n; v++) {
    if (v + kAhead < n && k[4 * (v + kAhead)] >= 0) __builtin_prefetch(t + 4 * static_cast<size_t>(k[4 * (v + kAhead)]), 0, 3);
    const int32_t home = k[4 * v];
    if (home < 0) {
      out[v] = -1;
      continue;
    }
    const int32_t k0 = k[4 * v + 1], k1 = k[4 * v + 2], k2 = k[4 * v + 3];
    uint32_t i = static_cast<uint32_t>(home);
    for (size_t steps = 0;; steps++) {
      if (steps > mask) {
        Fail(env, "table holds no empty slot");
        return env.Undefined();
      }
      const size_t j = 4 * static_cast<size_t>(i);
      if (t[j] == 0 || (t[j + 1] == k0 && t[j + 2] == k1 && t[j + 3] == k2)) {
        out[v] = static_cast<int32_t>(j);
        break;
      }
      i = (i + 1) & mask;
    }
  }
  return env.Undefined();
}

// adjustExternalMemory(delta): tell V8 that `delta` bytes it does not count changed hands — the head's columns
// (src/head/column-memory.ts) became garbage (> 0) or were collected (< 0). Returns V8's new total. Not a kernel:
// it has no TypeScript twin, and without the addon the head's columns are plain ArrayBuffers, which V8 counts itself.
Napi::Value AdjustExternalMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    TypeFail(env, "delta: want a number");
    return env.Undefined();
  }
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > 9007199254740991.0) {
    Fail(env, "delta: want a safe integer");
    return env.Undefined();
  }
  const int64_t total = Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(d));
  return Napi::Number::New(env, static_cast<double>(total));
}

// populate(...views): fault in the whole pages under each typed array on libuv's thread pool
// (madvise MADV_POPULATE_WRITE, Linux 5.14+), so that the thread that first writes them does not stop for each
// page's fault — the head's next bucket blocks (src/head/column-memory.ts). One call for several views: handing work
// to the pool wakes one of its threads, ~20 µs of the caller's time on this VM, whatever the work. It changes no
// byte (a page already there is left alone), so it is safe while the memory is read or written. Returns a promise
// of true when every view's pages are in, false where the system cannot (another OS, an older kernel, memory not
// from an anonymous mapping). The views are referenced until then, so their memory outlives the call. Not a kernel:
// there is no way to do it in JavaScript.
class PopulateWorker : public Napi::AsyncWorker {
 public:
  explicit PopulateWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "tallydb.populate"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Add(Napi::TypedArray view) {
    // The element pointer from napi itself: a SharedArrayBuffer's view has one too, where ArrayBuffer() does not.
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(Env(), view, &type, &length, &data, nullptr, nullptr) != napi_ok || data == nullptr) return;
    refs_.push_back(Napi::Persistent(view.As<Napi::Object>()));
    ranges_.push_back({static_cast<uint8_t*>(data), view.ByteLength()});
  }

  void Execute() override {
#ifdef __linux__
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    ok_ = true;
    for (const auto& r : ranges_) {
      const uintptr_t from = (reinterpret_cast<uintptr_t>(r.first) + page - 1) & ~(page - 1);
      const uintptr_t to = (reinterpret_cast<uintptr_t>(r.first) + r.second) & ~(page - 1);
      if (to > from && madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE) != 0) ok_ = false;
    }
#endif
  }
  void OnOK() override {
    for (auto& ref : refs_) ref.Reset();
    deferred_.Resolve(Napi::Boolean::New(Env(), ok_));
  }
  void OnError(const Napi::Error& e) override {
    for (auto& ref : refs_) ref.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
  std::vector<std::pair<uint8_t*, size_t>> ranges_;
  bool ok_ = false;
};

Napi::Value Populate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) {
    TypeFail(env, "views: want one or more typed arrays");
    return env.Undefined();
  }
  for (size_t i = 0; i < info.Length(); i++) {
    if (!info[i].IsTypedArray()) {
      TypeFail(env, "views: want typed arrays");
      return env.Undefined();
    }
  }
  auto* worker = new PopulateWorker(env);
  for (size_t i = 0; i < info.Length(); i++) worker->Add(info[i].As<Napi::TypedArray>());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unpack", Napi::Function::New(env, UnpackU32, "unpack"));
  exports.Set("decodeTimestamps", Napi::Function::New(env, DecodeTimestamps, "decodeTimestamps"));
  exports.Set("timestampAnchors", Napi::Function::New(env, TimestampAnchors, "timestampAnchors"));
  exports.Set("timestampsAt", Napi::Function::New(env, TimestampsAt, "timestampsAt"));
  exports.Set("bucketCounts", Napi::Function::New(env, BucketCounts, "bucketCounts"));
  exports.Set("bucketCountsAt", Napi::Function::New(env, BucketCountsAt, "bucketCountsAt"));
  exports.Set("selectTimeRange", Napi::Function::New(env, SelectTimeRange, "selectTimeRange"));
  exports.Set("countByCode", Napi::Function::New(env, CountByCode, "countByCode"));
  exports.Set("selectCodeRange", Napi::Function::New(env, SelectCodeRange, "selectCodeRange"));
  exports.Set("countByKey", Napi::Function::New(env, CountByKey, "countByKey"));
  exports.Set("countFirstMet", Napi::Function::New(env, CountFirstMet, "countFirstMet"));
  exports.Set("dedupMove", Napi::Function::New(env, DedupMove, "dedupMove"));
  exports.Set("probeSlots", Napi::Function::New(env, ProbeSlots, "probeSlots"));
  exports.Set("dedupChunk", Napi::Function::New(env, DedupChunk, "dedupChunk"));
  exports.Set("adjustExternalMemory", Napi::Function::New(env, AdjustExternalMemory, "adjustExternalMemory"));
  exports.Set("populate", Napi::Function::New(env, Populate, "populate"));
  return exports;
}

}  // namespace

NODE_API_MODULE(tallydb_native, Init)
