// fdg::table_error: whether a table can be used, before the kernel reads any of it (a malformed table would make the
// kernel read or write outside its operands).
#include <initializer_list>

#include "channelwise.h"
#include "table.h"

namespace fdg {

const char* table_error(const int64_t* t, int64_t numel) {
  if (numel < kHeader) return "it is shorter than its header";
  for (int64_t j = 0; j < kHeader; ++j)
    if (t[j] < 0) return "its header has a negative count or size";
  const Table table(t);
  // in this order, so that no count can overflow the sum before it is compared
  for (int j : {1, 2, 3, 9})
    if (t[j] > numel / 3) return "its length does not match its counts";
  if (t[0] > numel / 8 || t[8] > numel / 4 ||
      numel != kHeader + 8 * table.n_paths + 3 * (table.n_xb + table.n_yb + table.n_zb + table.n_entries) +
                   4 * table.n_pairs)
    return "its length does not match its counts";
  auto blocks_fit = [](const int64_t* b, int64_t n, int64_t width) {
    for (int64_t j = 0; j < n; ++j, b += 3)
      if (b[0] < 0 || b[1] < 0 || b[2] < 0 || (b[2] > 0 && b[1] > (width - b[0]) / b[2])) return false;
    return true;
  };
  if (!blocks_fit(table.xb, table.n_xb, table.X) || !blocks_fit(table.yb, table.n_yb, table.Y) ||
      !blocks_fit(table.zb, table.n_zb, table.Z))
    return "a block lies outside its operand";
  if (!table.paired() && (table.n_pairs > 0 || table.n_zb > 0 || table.C > 0 || table.T != table.X))
    return "a table without z has pairs, z blocks or a t other than x";
  for (int64_t p = 0; p < table.n_pairs; ++p) {
    const int64_t* q = table.pairs + 4 * p;
    if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] > table.T - table.C || q[1] > table.X - table.C ||
        q[2] > table.Z - table.C)
      return "a pair lies outside t, x or z";
  }
  for (int64_t p = 0; p < table.n_paths; ++p) {
    const int64_t* q = table.paths + 8 * p;
    for (int j = 0; j < 8; ++j)
      if (q[j] < 0) return "a path has a negative entry";
    const int64_t t_off = q[0], y_off = q[1], mul = q[2], d1 = q[3], d3 = q[4], w_off = q[5];
    if (t_off > table.T || y_off > table.Y || w_off > table.W || (d1 > 0 && mul > (table.T - t_off) / d1) ||
        (d3 > 0 && mul > (table.Y - y_off) / d3) || mul > table.W - w_off)
      return "a path lies outside its operands";
    if (q[6] > q[7] || q[7] > table.n_entries) return "a path's entries lie outside the table";
    for (int64_t e = q[6]; e < q[7]; ++e) {
      const int64_t* entry = table.entries + 3 * e;
      if (entry[0] < 0 || entry[0] >= d3 || entry[1] < 0 || entry[1] >= d1 || entry[2] < 0 || entry[2] >= table.M)
        return "an entry lies outside its path or the coupling matrix";
    }
  }
  return nullptr;
}

}  // namespace fdg
