#pragma once
// The tokenizer of a GGUF llama model, both ways.
//
// Export: llama.cpp's "llama" tokenizer model is SentencePiece-style: text gets a "▁" prefix,
// spaces become "▁", and adjacent pieces merge in order of decreasing score while their
// concatenation is a token. A Hugging Face BPE tokenizer of that style (normalizer Prepend "▁" +
// Replace " " -> "▁", or a Metaspace pre-tokenizer) merges pairs in order of increasing merge
// rank instead, so the scores written are score(t) = −(rank of the first merge producing t);
// tokens no merge produces get −(number of merges), below every merged token. Token types:
// <0xXX> byte tokens BYTE, the unknown token UNKNOWN, special added tokens CONTROL, other added
// tokens USER_DEFINED, ids past the tokenizer's vocabulary (embedding rows nobody uses) UNUSED
// as "[PAD<id>]", everything else NORMAL. Special ids, add_bos/add_eos (what the tokenizer's
// post-processor does) and add_space_prefix are written too, and the whole tokenizer.json as
// tokenizer.huggingface.json (the spec's key for it) so that a reader can reproduce the Hugging
// Face ids exactly. Other tokenizers (byte-level GPT-2 BPE, WordPiece, Unigram) are refused.
//
// Import: tquant tokenizes a GGUF model with its embedded tokenizer.huggingface.json (the
// tokenizer.ggml.* ids for BOS/EOS/UNK/PAD), after checking that it agrees with
// tokenizer.ggml.tokens.
#include <filesystem>
#include <memory>

#include "export/gguf_format.h"
#include "tokenize/tokenizer.h"

namespace tquant::gguf {

// Appends the tokenizer.* keys for the tokenizer of model_dir (tokenizer.json), for a model
// whose embedding has n_vocab rows.
void append_llama_vocab(const std::filesystem::path& model_dir, int64_t n_vocab, Metadata& md);

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::filesystem::path& file);

}  // namespace tquant::gguf
