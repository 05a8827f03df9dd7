#include "worker/vectorizer.h"

#include <charconv>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {
namespace {

// One column of a table as the catalog describes it; the query returns no row when the column
// does not exist. The pgvector check asks pg_depend whether the type belongs to the extension
// `vector`, so a user's own type or domain that happens to be called "vector" is not mistaken
// for it.
constexpr std::string_view kColumnSql = R"sql(
SELECT format_type(a.atttypid, a.atttypmod),
       t.typname,
       a.atttypmod,
       EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
               WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                 AND d.deptype = 'e' AND e.extname = 'vector') AS is_pgvector
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped)sql";

struct ColumnInfo {
  std::string type_sql;   // format_type(): "bigint", "real[]", "vector(384)"
  std::string type_name;  // pg_type.typname: "int8", "_float4", "vector"
  int typmod = -1;
  bool is_pgvector = false;
};

StatusOr<ColumnInfo> LookupColumn(PgConnection& conn, const std::string& table_sql,
                                  const std::string& shown_table, const std::string& column) {
  SLUICE_ASSIGN_OR_RETURN(PgResult r,
                          conn.Execute(kColumnSql, PgParams().Text(table_sql).Text(column)));
  if (r.rows() == 0) {
    return NotFound("column \"" + column + "\" does not exist in table " + shown_table);
  }
  ColumnInfo info;
  info.type_sql = std::string(r.Raw(0, 0));
  info.type_name = std::string(r.Raw(0, 1));
  std::string_view typmod = r.Raw(0, 2);
  std::from_chars(typmod.data(), typmod.data() + typmod.size(), info.typmod);
  info.is_pgvector = r.Raw(0, 3) == "t";
  return info;
}

StatusOr<TargetColumnInfo> ClassifyTarget(const ColumnInfo& c, const std::string& column) {
  TargetColumnInfo target;
  if (c.type_name == "_float4") {
    target.type = VectorColumnType::kRealArray;
    return target;
  }
  if (c.is_pgvector) {
    target.type = VectorColumnType::kPgVector;
    target.dimensions = c.typmod > 0 ? c.typmod : 0;
    return target;
  }
  return InvalidArgument("column \"" + column + "\" has type " + c.type_sql +
                         "; the target must be real[] or pgvector's vector");
}

// `{a,b,c}` for real[] or `[a,b,c]` for vector; shortest round-trip float text, so the stored
// float4 values are exactly the computed ones.
void AppendVectorLiteral(const float* v, size_t dim, VectorColumnType type, std::string* out) {
  out->push_back(type == VectorColumnType::kPgVector ? '[' : '{');
  char buf[32];
  for (size_t i = 0; i < dim; ++i) {
    if (i > 0) out->push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v[i]);
    out->append(buf, end);
  }
  out->push_back(type == VectorColumnType::kPgVector ? ']' : '}');
}

}  // namespace

StatusOr<std::unique_ptr<Vectorizer>> Vectorizer::Create(VectorizerOptions options,
                                                         PgConnection conn, Embedder* embedder) {
  if (embedder == nullptr) return InvalidArgument("the vectorizer needs an embedder");
  if (options.table.empty() || options.id_column.empty() || options.text_column.empty() ||
      options.target_column.empty()) {
    return InvalidArgument("table, id column, text column and target column must all be given");
  }
  if (options.batch_size == 0) return InvalidArgument("the batch size must be positive");
  std::unique_ptr<Vectorizer> v(new Vectorizer(std::move(options), std::move(conn), embedder));
  SLUICE_RETURN_IF_ERROR(v->Resolve());
  return v;
}

StatusOr<TargetColumnInfo> Vectorizer::InspectTargetColumn(PgConnection& conn,
                                                           const std::string& table_sql,
                                                           const std::string& column) {
  SLUICE_ASSIGN_OR_RETURN(ColumnInfo info, LookupColumn(conn, table_sql, table_sql, column));
  return ClassifyTarget(info, column);
}

Status Vectorizer::Resolve() {
  // Quote each part of "schema.table"; a name with more dots is refused rather than guessed.
  std::string_view table = options_.table;
  std::vector<std::string_view> parts;
  size_t dot = table.find('.');
  if (dot == std::string_view::npos) {
    parts.push_back(table);
  } else {
    parts.push_back(table.substr(0, dot));
    parts.push_back(table.substr(dot + 1));
  }
  for (std::string_view p : parts) {
    if (p.empty() || p.find('.') != std::string_view::npos) {
      return InvalidArgument("table \"" + options_.table +
                             "\" must be a name or schema.name (without quotes)");
    }
  }
  table_sql_.clear();
  for (std::string_view p : parts) {
    SLUICE_ASSIGN_OR_RETURN(std::string q, conn_.QuoteIdentifier(p));
    table_sql_ += (table_sql_.empty() ? "" : ".") + q;
  }
  SLUICE_ASSIGN_OR_RETURN(PgResult exists, conn_.Execute("SELECT to_regclass($1) IS NOT NULL",
                                                         PgParams().Text(table_sql_)));
  if (exists.Raw(0, 0) != "t") return NotFound("table " + options_.table + " does not exist");

  SLUICE_ASSIGN_OR_RETURN(ColumnInfo id,
                          LookupColumn(conn_, table_sql_, options_.table, options_.id_column));
  SLUICE_RETURN_IF_ERROR(
      LookupColumn(conn_, table_sql_, options_.table, options_.text_column).status());
  SLUICE_ASSIGN_OR_RETURN(ColumnInfo target,
                          LookupColumn(conn_, table_sql_, options_.table, options_.target_column));
  SLUICE_ASSIGN_OR_RETURN(target_, ClassifyTarget(target, options_.target_column));
  if (target_.dimensions > 0 && target_.dimensions != embedder_->embedding_dim()) {
    return InvalidArgument("column \"" + options_.target_column + "\" is " + target.type_sql +
                           " but the model makes vectors of " +
                           std::to_string(embedder_->embedding_dim()) + " dimensions");
  }
  id_type_ = id.type_sql;
  SLUICE_ASSIGN_OR_RETURN(id_sql_, conn_.QuoteIdentifier(options_.id_column));
  SLUICE_ASSIGN_OR_RETURN(text_sql_, conn_.QuoteIdentifier(options_.text_column));
  SLUICE_ASSIGN_OR_RETURN(target_sql_, conn_.QuoteIdentifier(options_.target_column));
  return Status::Ok();
}

StatusOr<int64_t> Vectorizer::CountPending() {
  SLUICE_ASSIGN_OR_RETURN(
      PgResult r, conn_.Execute("SELECT count(*) FROM " + table_sql_ + " WHERE " + target_sql_ +
                                " IS NULL AND " + text_sql_ + " IS NOT NULL"));
  int64_t n = 0;
  std::string_view s = r.Raw(0, 0);
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

StatusOr<int64_t> Vectorizer::Run(const std::function<void(int64_t)>& progress) {
  // Every column is qualified with the alias `t`, so ORDER BY sorts by the column itself and
  // not by the text it is cast to in the select list.
  const std::string pending =
      " WHERE t." + target_sql_ + " IS NULL AND t." + text_sql_ + " IS NOT NULL";
  const std::string select_head = "SELECT t." + id_sql_ + "::text, t." + text_sql_ +
                                  "::text FROM " + table_sql_ + " AS t" + pending;
  const std::string order =
      " ORDER BY t." + id_sql_ + " LIMIT " + std::to_string(options_.batch_size);
  const std::string select_first = select_head + order;
  const std::string select_next = select_head + " AND t." + id_sql_ + " > $1::" + id_type_ + order;
  const char* vector_type = target_.type == VectorColumnType::kPgVector ? "vector" : "real[]";
  // The NULL guard keeps a concurrent run's vector rather than writing the same one twice.
  const std::string update =
      "UPDATE " + table_sql_ + " AS t SET " + target_sql_ + " = u.v::" + vector_type +
      " FROM unnest($1::text[], $2::text[]) AS u(id, v)" + " WHERE t." + id_sql_ +
      " = u.id::" + id_type_ + " AND t." + target_sql_ + " IS NULL";
  const size_t dim = static_cast<size_t>(embedder_->embedding_dim());

  int64_t done = 0;
  std::string last_id;
  bool first = true;
  std::vector<std::string> ids, texts, literals;
  std::vector<float> vectors;
  while (true) {
    StatusOr<PgResult> rows =
        first ? conn_.Execute(select_first) : conn_.Execute(select_next, PgParams().Text(last_id));
    if (!rows.ok()) return rows.status().WithContext("reading " + options_.table);
    if (rows->rows() == 0) return done;
    first = false;
    ids.clear();
    texts.clear();
    for (int r = 0; r < rows->rows(); ++r) {
      ids.emplace_back(rows->Raw(r, 0));
      texts.emplace_back(rows->Raw(r, 1));
    }
    last_id = ids.back();
    Status embedded = embedder_->Embed(texts, &vectors);
    if (!embedded.ok()) {
      return embedded.WithContext("batch of rows " + ids.front() + " to " + ids.back());
    }
    literals.assign(ids.size(), std::string());
    for (size_t i = 0; i < ids.size(); ++i) {
      literals[i].reserve(dim * 12);
      AppendVectorLiteral(vectors.data() + i * dim, dim, target_.type, &literals[i]);
    }
    StatusOr<PgResult> written =
        conn_.Execute(update, PgParams().TextArray(ids).TextArray(literals));
    if (!written.ok()) return written.status().WithContext("writing " + options_.table);
    done += written->affected_rows();
    if (progress) progress(done);
  }
}

}  // namespace sluice
