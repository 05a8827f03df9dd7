// Vectorizer: fills an embedding column of an existing table. Rows are read in id order by
// keyset pagination (id > last id), only those whose target is NULL and whose text is not, so
// a run stopped at any point resumes where it was. Each batch is one SELECT, one Embedder call
// and one UPDATE in autocommit: no transaction is held while the model runs. Vectors are stored
// as real[] or, when the target column is pgvector's `vector`, as that type.
// Thread-safety: not thread-safe; one thread drives a Vectorizer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "engine/embedder.h"
#include "pg/pg_connection.h"

namespace sluice {

struct VectorizerOptions {
  // "name" or "schema.name", taken literally (no case folding); each part is quoted.
  std::string table;
  std::string id_column;      // unique and orderable (a primary key)
  std::string text_column;    // read as text
  std::string target_column;  // real[] or vector(n)
  size_t batch_size = 64;     // rows per SELECT / Embed / UPDATE
};

enum class VectorColumnType { kRealArray, kPgVector };

// The catalog's view of a target column: real[] is always accepted; `vector` only when it is
// the pgvector extension's type (dimension from its typmod, 0 when unconstrained).
struct TargetColumnInfo {
  VectorColumnType type = VectorColumnType::kRealArray;
  int dimensions = 0;
};

class Vectorizer {
 public:
  // Resolves the table and columns in the catalog. NotFound for a missing table or column,
  // InvalidArgument for a target column of an unsupported type or a pgvector dimension that
  // differs from the model's. `embedder` must outlive the Vectorizer.
  static StatusOr<std::unique_ptr<Vectorizer>> Create(VectorizerOptions options, PgConnection conn,
                                                      Embedder* embedder);

  // Looks up `column` of `table` (an already resolved regclass name) and classifies its type.
  static StatusOr<TargetColumnInfo> InspectTargetColumn(PgConnection& conn,
                                                        const std::string& regclass,
                                                        const std::string& column);

  // Rows still to do: target NULL, text not NULL.
  StatusOr<int64_t> CountPending();
  // Embeds every pending row; `progress(rows_done)` runs after each batch. Returns rows written.
  StatusOr<int64_t> Run(const std::function<void(int64_t)>& progress = {});

  const TargetColumnInfo& target() const { return target_; }

 private:
  Vectorizer(VectorizerOptions options, PgConnection conn, Embedder* embedder)
      : options_(std::move(options)), conn_(std::move(conn)), embedder_(embedder) {}

  // Fills the quoted names, the id type and the target type.
  Status Resolve();

  const VectorizerOptions options_;
  PgConnection conn_;
  Embedder* const embedder_;
  TargetColumnInfo target_;
  std::string table_sql_;  // quoted, possibly schema-qualified
  std::string id_sql_, text_sql_, target_sql_;
  std::string id_type_;  // format_type() of the id column, for casts of the keyset value
};

}  // namespace sluice
