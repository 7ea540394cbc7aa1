#include "export/gguf_format.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/half.h"

namespace tquant::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF files are little-endian; so is this reader");

const char* type_name(TensorType t) {
  switch (t) {
    case TensorType::F32: return "f32";
    case TensorType::F16: return "f16";
    case TensorType::Q4_0: return "q4_0";
    case TensorType::Q4_1: return "q4_1";
    case TensorType::Q8_0: return "q8_0";
  }
  return "?";
}

std::optional<TensorType> parse_type(std::string_view name) {
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0})
    if (name == type_name(t)) return t;
  return std::nullopt;
}

std::optional<TensorType> type_from_id(uint32_t id) {
  switch (id) {
    case 0: return TensorType::F32;
    case 1: return TensorType::F16;
    case 2: return TensorType::Q4_0;
    case 3: return TensorType::Q4_1;
    case 8: return TensorType::Q8_0;
  }
  return std::nullopt;
}

bool is_block_type(TensorType t) { return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q8_0; }

int64_t block_elements(TensorType t) { return is_block_type(t) ? kBlock : 1; }

int64_t block_bytes(TensorType t) {
  switch (t) {
    case TensorType::F32: return 4;
    case TensorType::F16: return 2;
    case TensorType::Q4_0: return 2 + kBlock / 2;
    case TensorType::Q4_1: return 4 + kBlock / 2;
    case TensorType::Q8_0: return 2 + kBlock;
  }
  return 0;
}

int64_t row_bytes(TensorType t, int64_t n, std::string_view where) {
  const int64_t b = block_elements(t);
  if (n <= 0 || n % b != 0)
    fail("{}: rows of {} elements are not a whole number of the {}-element blocks of {}", where, n, b, type_name(t));
  return n / b * block_bytes(t);
}

uint32_t file_type_of(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0;   // ALL_F32
    case TensorType::F16: return 1;   // MOSTLY_F16
    case TensorType::Q4_0: return 2;  // MOSTLY_Q4_0
    case TensorType::Q4_1: return 3;  // MOSTLY_Q4_1
    case TensorType::Q8_0: return 7;  // MOSTLY_Q8_0
  }
  return 0;
}

namespace {

void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
uint16_t get_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void pack_nibbles(const uint8_t* q, uint8_t* out) {
  for (int j = 0; j < kBlock / 2; ++j)
    out[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + kBlock / 2] & 0x0f) << 4));
}

}  // namespace

void encode_q4_0(uint16_t d, const uint8_t* q, uint8_t* block) {
  put_u16(block, d);
  pack_nibbles(q, block + 2);
}

void encode_q4_1(uint16_t d, uint16_t m, const uint8_t* q, uint8_t* block) {
  put_u16(block, d);
  put_u16(block + 2, m);
  pack_nibbles(q, block + 4);
}

void encode_q8_0(uint16_t d, const int8_t* q, uint8_t* block) {
  put_u16(block, d);
  std::memcpy(block + 2, q, kBlock);
}

void unpack_nibbles(const uint8_t* nibbles, uint8_t* q) {
  for (int j = 0; j < kBlock / 2; ++j) {
    q[j] = nibbles[j] & 0x0f;
    q[j + kBlock / 2] = nibbles[j] >> 4;
  }
}

void dequantize_row(TensorType t, const uint8_t* data, int64_t n, float* out) {
  const int64_t blocks = n / block_elements(t), bb = block_bytes(t);
  switch (t) {
    case TensorType::F32:
      std::memcpy(out, data, static_cast<size_t>(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(get_u16(data + 2 * i));
      return;
    case TensorType::Q4_0:
    case TensorType::Q4_1:
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* blk = data + b * bb;
        const float d = f16_to_f32(get_u16(blk));
        uint8_t q[kBlock];
        if (t == TensorType::Q4_0) {
          unpack_nibbles(blk + 2, q);
          for (int j = 0; j < kBlock; ++j) out[b * kBlock + j] = static_cast<float>(q[j] - 8) * d;
        } else {
          const float m = f16_to_f32(get_u16(blk + 2));
          unpack_nibbles(blk + 4, q);
          for (int j = 0; j < kBlock; ++j) out[b * kBlock + j] = static_cast<float>(q[j]) * d + m;
        }
      }
      return;
    case TensorType::Q8_0:
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* blk = data + b * bb;
        const float d = f16_to_f32(get_u16(blk));
        for (int j = 0; j < kBlock; ++j)
          out[b * kBlock + j] = static_cast<float>(static_cast<int8_t>(blk[2 + j])) * d;
      }
      return;
  }
}

void quantize_row(TensorType t, const float* x, int64_t n, uint8_t* out) {
  switch (t) {
    case TensorType::F32:
      std::memcpy(out, x, static_cast<size_t>(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) put_u16(out + 2 * i, f32_to_f16(x[i]));
      return;
    default:
      break;
  }
  const int64_t blocks = n / kBlock, bb = block_bytes(t);
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = x + b * kBlock;
    uint8_t* blk = out + b * bb;
    uint8_t q[kBlock];
    if (t == TensorType::Q4_0) {
      // The sign of the extreme value is kept so that it lands exactly on code 0 (−8·d).
      float amax = 0.f, max = 0.f;
      for (int j = 0; j < kBlock; ++j)
        if (amax < std::fabs(v[j])) {
          amax = std::fabs(v[j]);
          max = v[j];
        }
      const float d = max / -8;
      const float id = d != 0.f ? 1.0f / d : 0.0f;
      for (int j = 0; j < kBlock; ++j)  // truncation of x/d + 8.5, as ggml's (int8_t) cast
        q[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(v[j] * id + 8.5f))));
      encode_q4_0(f32_to_f16(d), q, blk);
    } else if (t == TensorType::Q4_1) {
      float min = FLT_MAX, max = -FLT_MAX;
      for (int j = 0; j < kBlock; ++j) {
        if (v[j] < min) min = v[j];
        if (v[j] > max) max = v[j];
      }
      const float d = (max - min) / 15;
      const float id = d != 0.f ? 1.0f / d : 0.0f;
      for (int j = 0; j < kBlock; ++j)
        q[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>((v[j] - min) * id + 0.5f))));
      encode_q4_1(f32_to_f16(d), f32_to_f16(min), q, blk);
    } else {
      float amax = 0.f;
      for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(v[j]));
      const float d = amax / 127;
      const float id = d != 0.f ? 1.0f / d : 0.0f;
      int8_t q8[kBlock];
      for (int j = 0; j < kBlock; ++j) q8[j] = static_cast<int8_t>(std::round(v[j] * id));
      encode_q8_0(f32_to_f16(d), q8, blk);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Metadata values
// ------------------------------------------------------------------------------------------

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "?";
}

bool is_valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

Value Value::integer(ValueType t, int64_t v) {
  Value x;
  x.type_ = t;
  x.bits_ = static_cast<uint64_t>(v);
  return x;
}

Value Value::u64(uint64_t v) {
  Value x;
  x.type_ = ValueType::UINT64;
  x.bits_ = v;
  return x;
}

Value Value::f32(float v) {
  Value x;
  x.type_ = ValueType::FLOAT32;
  x.float_ = v;
  return x;
}

Value Value::f64(double v) {
  Value x;
  x.type_ = ValueType::FLOAT64;
  x.float_ = v;
  return x;
}

Value Value::boolean(bool v) {
  Value x;
  x.type_ = ValueType::BOOL;
  x.bits_ = v ? 1 : 0;
  return x;
}

Value Value::string(std::string v) {
  Value x;
  x.type_ = ValueType::STRING;
  x.string_ = std::move(v);
  return x;
}

Value Value::array(ValueType element, std::vector<Value> items) {
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].type_ != element)
      fail("GGUF array of {}: item {} is a {}", value_type_name(element), i, value_type_name(items[i].type_));
  Value x;
  x.type_ = ValueType::ARRAY;
  x.element_ = element;
  x.items_ = std::move(items);
  return x;
}

Value Value::strings(const std::vector<std::string>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (const std::string& s : v) items.push_back(string(s));
  return array(ValueType::STRING, std::move(items));
}

Value Value::f32s(const std::vector<float>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (float f : v) items.push_back(f32(f));
  return array(ValueType::FLOAT32, std::move(items));
}

Value Value::i32s(const std::vector<int32_t>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (int32_t i : v) items.push_back(i32(i));
  return array(ValueType::INT32, std::move(items));
}

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

uint64_t Value::as_uint(std::string_view where) const {
  if (!is_integer()) fail("{}: expected an unsigned integer, found a {}", where, value_type_name(type_));
  const bool is_signed = type_ == ValueType::INT8 || type_ == ValueType::INT16 || type_ == ValueType::INT32 ||
                         type_ == ValueType::INT64;
  if (is_signed && static_cast<int64_t>(bits_) < 0)
    fail("{}: expected a non-negative integer, found {}", where, static_cast<int64_t>(bits_));
  return bits_;
}

int64_t Value::as_int(std::string_view where) const {
  if (!is_integer()) fail("{}: expected an integer, found a {}", where, value_type_name(type_));
  if (type_ == ValueType::UINT64 && bits_ > static_cast<uint64_t>(INT64_MAX))
    fail("{}: {} does not fit a signed 64-bit integer", where, bits_);
  return static_cast<int64_t>(bits_);
}

double Value::as_float(std::string_view where) const {
  if (type_ != ValueType::FLOAT32 && type_ != ValueType::FLOAT64)
    fail("{}: expected a float32 or float64, found a {}", where, value_type_name(type_));
  return float_;
}

bool Value::as_bool(std::string_view where) const {
  if (type_ != ValueType::BOOL) fail("{}: expected a bool, found a {}", where, value_type_name(type_));
  return bits_ != 0;
}

const std::string& Value::as_string(std::string_view where) const {
  if (type_ != ValueType::STRING) fail("{}: expected a string, found a {}", where, value_type_name(type_));
  return string_;
}

const std::vector<Value>& Value::items(std::string_view where) const {
  if (type_ != ValueType::ARRAY) fail("{}: expected an array, found a {}", where, value_type_name(type_));
  return items_;
}

bool Value::operator==(const Value& o) const {
  if (type_ != o.type_) return false;
  switch (type_) {
    case ValueType::FLOAT32:
    case ValueType::FLOAT64:
      return std::memcmp(&float_, &o.float_, sizeof(double)) == 0;
    case ValueType::STRING:
      return string_ == o.string_;
    case ValueType::ARRAY:
      return element_ == o.element_ && items_ == o.items_;
    default:
      return bits_ == o.bits_;
  }
}

}  // namespace tquant::gguf
