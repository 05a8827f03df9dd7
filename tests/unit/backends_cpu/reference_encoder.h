// A random BERT-style encoder held in memory (weights in F32, F16 or BF16) and a naive,
// obviously-correct forward pass over it in double precision, for checking the CPU backend.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/batch.h"
#include "engine/encoder_config.h"
#include "engine/encoder_weights.h"
#include "engine/pooling.h"

namespace sluice::testing {

class RandomEncoder {
 public:
  RandomEncoder(const EncoderConfig& config, DType dtype, uint32_t seed);
  RandomEncoder(const RandomEncoder&) = delete;
  RandomEncoder& operator=(const RandomEncoder&) = delete;

  const EncoderConfig& config() const { return config_; }
  // Views of the stored tensors, as EncoderWeights::Bind would produce them.
  const EncoderWeights& weights() const { return weights_; }
  EncoderWeights& mutable_weights() { return weights_; }

  // Final hidden states of one sequence ([len, hidden]), computed in double from the weights'
  // exact (dequantised) values.
  std::vector<double> ReferenceHidden(const std::vector<int32_t>& ids,
                                      const std::vector<int32_t>& types) const;
  // The pooled (and optionally L2-normalised) vector of one sequence.
  std::vector<double> ReferenceEmbedding(const std::vector<int32_t>& ids,
                                         const std::vector<int32_t>& types, Pooling pooling,
                                         bool normalize) const;

 private:
  struct Tensor {
    std::vector<std::byte> bytes;
    std::vector<double> values;  // what the bytes decode to
  };
  // Creates a tensor of uniform values in [-scale, scale] (+ offset) stored as dtype_.
  TensorView Make(const std::string& name, std::vector<int64_t> shape, double scale,
                  double offset = 0.0);
  const std::vector<double>& Values(const TensorView& view) const;

  EncoderConfig config_;
  DType dtype_;
  uint32_t state_;
  std::vector<std::unique_ptr<Tensor>> tensors_;
  EncoderWeights weights_;
};

}  // namespace sluice::testing
