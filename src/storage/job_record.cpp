// The column list every backend's SQL is made from.

#include "storage/job_record.h"

namespace zk::storage {

std::string column_list()
{
    std::string out;
    for (const Column& c : columns) out.append(out.empty() ? "" : ", ").append(c.name);
    return out;
}

std::size_t column_index(std::string_view name)
{
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i].name == name) return i;
    return columns.size();
}

}  // namespace zk::storage
