#pragma once
// GGUF's vocabulary (ggml's docs/gguf.md, version 3): the tensor types tquant writes and reads
// with their block layouts, and the typed metadata values. Everything is little-endian.
//
// Blocks of 32 consecutive elements of a row (ggml's QK4_0 = QK4_1 = QK8_0 = 32), with d and m
// stored as IEEE binary16:
//   Q4_0  [d][16 bytes]      x = d·(q − 8),  q in 0..15
//   Q4_1  [d][m][16 bytes]   x = d·q + m,    q in 0..15
//   Q8_0  [d][32 × int8]     x = d·q,        q in −128..127
// In the 16 nibble bytes, byte j holds element j in its low nibble and element j + 16 in its
// high nibble (not elements 2j, 2j + 1).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tquant::gguf {

constexpr uint32_t kMagic = 0x46554747;  // the bytes "GGUF" read as a little-endian uint32
constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION for these block layouts
constexpr int64_t kBlock = 32;
constexpr size_t kMaxTensorName = 64;

// ggml_type ids; only the types tquant writes.
enum class TensorType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8 };

const char* type_name(TensorType t);                          // "f32", "f16", "q4_0", "q4_1", "q8_0"
std::optional<TensorType> parse_type(std::string_view name);  // the inverse
std::optional<TensorType> type_from_id(uint32_t id);          // nullopt for every other ggml type
bool is_block_type(TensorType t);                             // Q4_0, Q4_1, Q8_0
int64_t block_elements(TensorType t);                         // 1, or 32 for block types
int64_t block_bytes(TensorType t);                            // 4, 2, 18, 20, 34
// Bytes of one row of n elements; an n that does not fill whole blocks is an error naming `where`.
int64_t row_bytes(TensorType t, int64_t n, std::string_view where);
// general.file_type (llama.cpp's llama_ftype) of a file whose weights are mostly of type t.
uint32_t file_type_of(TensorType t);

// Block codecs. d and m are binary16 bit patterns, so the caller decides how they were rounded.
void encode_q4_0(uint16_t d, const uint8_t* q /*32 codes 0..15*/, uint8_t* block);
void encode_q4_1(uint16_t d, uint16_t m, const uint8_t* q /*32 codes 0..15*/, uint8_t* block);
void encode_q8_0(uint16_t d, const int8_t* q /*32 codes*/, uint8_t* block);
// The 32 codes of a Q4_0 or Q4_1 block (pass the pointer to its 16 nibble bytes).
void unpack_nibbles(const uint8_t* nibbles, uint8_t* q);

// n elements (a whole number of blocks) of type t to float32, exactly as ggml's dequantize_row_*:
// d·(q − 8), d·q + m, d·q in float32 arithmetic.
void dequantize_row(TensorType t, const uint8_t* data, int64_t n, float* out);

// float32 to type t, for FP weights: F32 copied, F16 rounded to nearest even, and the block types
// quantized round-to-nearest per block as ggml's reference quantizers do (quantize_row_q4_0_ref
// etc.): Q4_0 d = (the signed value of largest magnitude) / −8, Q4_1 d = (max − min)/15 and
// m = min, Q8_0 d = max|x|/127; codes computed with the unrounded d, d and m stored as fp16.
// Bit-identical to llama.cpp's output for the same float32 input.
void quantize_row(TensorType t, const float* x, int64_t n, uint8_t* out);

// Metadata value types (gguf_metadata_value_type).
enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* value_type_name(ValueType t);
bool is_valid_value_type(uint32_t t);

// One metadata value: a scalar, a string, or an array of values of one type.
class Value {
 public:
  static Value u8(uint8_t v) { return integer(ValueType::UINT8, v); }
  static Value i8(int8_t v) { return integer(ValueType::INT8, v); }
  static Value u16(uint16_t v) { return integer(ValueType::UINT16, v); }
  static Value i16(int16_t v) { return integer(ValueType::INT16, v); }
  static Value u32(uint32_t v) { return integer(ValueType::UINT32, v); }
  static Value i32(int32_t v) { return integer(ValueType::INT32, v); }
  static Value u64(uint64_t v);
  static Value i64(int64_t v) { return integer(ValueType::INT64, v); }
  static Value f32(float v);
  static Value f64(double v);
  static Value boolean(bool v);
  static Value string(std::string v);
  static Value array(ValueType element, std::vector<Value> items);  // every item of type element
  static Value strings(const std::vector<std::string>& v);
  static Value f32s(const std::vector<float>& v);
  static Value i32s(const std::vector<int32_t>& v);

  ValueType type() const { return type_; }
  ValueType element_type() const { return element_; }  // arrays only
  bool is_integer() const;

  // Typed access; `where` (e.g. "FILE: key") starts the error message on a type mismatch.
  uint64_t as_uint(std::string_view where) const;  // any integer type with a value >= 0
  int64_t as_int(std::string_view where) const;    // any integer type that fits int64
  double as_float(std::string_view where) const;   // FLOAT32 or FLOAT64
  bool as_bool(std::string_view where) const;
  const std::string& as_string(std::string_view where) const;
  const std::vector<Value>& items(std::string_view where) const;  // of an array

  // Raw scalar storage, for the writer and reader: integers as their 64-bit two's complement,
  // floats as double (a FLOAT32 holds a value exactly representable in float).
  uint64_t raw_integer() const { return bits_; }
  double raw_float() const { return float_; }

  bool operator==(const Value& o) const;

 private:
  static Value integer(ValueType t, int64_t v);
  ValueType type_ = ValueType::UINT32;
  ValueType element_ = ValueType::UINT32;
  uint64_t bits_ = 0;
  double float_ = 0;
  std::string string_;
  std::vector<Value> items_;
};

// The metadata of a file, in file order; keys are unique.
using Metadata = std::vector<std::pair<std::string, Value>>;

}  // namespace tquant::gguf
