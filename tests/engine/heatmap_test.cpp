// Tests for engine::plot_heatmap: a PNG appears, ragged rows throw, an empty
// matrix writes nothing.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/plot.h"
#include "tests/test_util.h"

using namespace attnzoo;

class HeatmapTest : public attnzoo::testing::TempDirTest {};

TEST_F(HeatmapTest, WritesPngAndRejectsRaggedRows) {
  engine::Heatmap hm{.values = {{0.0, 0.5, 1.0}, {1.0, 0.5, 0.0}}, .title = "t", .xlabel = "key", .ylabel = "query",
                     .row_labels = {"a", "b"}, .col_labels = {"x", "y", "z"}};
  const auto png = path("h.png");
#ifdef ATTNZOO_HAVE_OPENCV
  ASSERT_TRUE(engine::plot_heatmap(hm, png));
  EXPECT_EQ(attnzoo::testing::read_bytes(png).substr(1, 3), "PNG");
  // Automatic range when vmin == vmax.
  hm.vmin = hm.vmax = 0;
  EXPECT_TRUE(engine::plot_heatmap(hm, path("auto.png")));
#endif
  EXPECT_FALSE(engine::plot_heatmap(engine::Heatmap{}, path("empty.png")));
  EXPECT_FALSE(std::filesystem::exists(path("empty.png")));
  hm.values[1].pop_back();
  EXPECT_THROW(engine::plot_heatmap(hm, path("ragged.png")), std::invalid_argument);
}
