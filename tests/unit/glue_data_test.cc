// Golden values (row counts, label counts, first/last rows) were read from the files in
// /work/shared/data/glue with shell tools and cross-checked against data/SOURCES.md.
#include "eval/glue_data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "expect_error.h"
#include "test_paths.h"

namespace tquant {
namespace {
namespace fs = std::filesystem;

const fs::path kGlue = fs::path(TQUANT_SHARED_DIR) / "data" / "glue";

int count_label(const GlueDataset& ds, float label) {
  int n = 0;
  for (const GlueExample& ex : ds.examples) n += ex.label == label;
  return n;
}

fs::path write_tmp(const std::string& name, const std::string& bytes) {
  const fs::path file = testing::scratch("glue_data") / name;
  std::ofstream(file, std::ios::binary) << bytes;
  return file;
}

using testing::expect_error;

TEST(GlueTask, ParsesNamesAndFolderSpellings) {
  EXPECT_EQ(parse_glue_task("sst2"), GlueTask::SST2);
  EXPECT_EQ(parse_glue_task("SST-2"), GlueTask::SST2);
  EXPECT_EQ(parse_glue_task("STS-B"), GlueTask::STSB);
  EXPECT_EQ(parse_glue_task("cola"), GlueTask::COLA);
  EXPECT_EQ(parse_glue_task("wnli"), GlueTask::WNLI);
  EXPECT_EQ(parse_glue_task("qnli"), GlueTask::QNLI);
  EXPECT_EQ(parse_glue_task("rte"), GlueTask::RTE);
  EXPECT_EQ(parse_glue_task("mrpc"), GlueTask::MRPC);
  for (GlueTask t : {GlueTask::SST2, GlueTask::MRPC, GlueTask::RTE, GlueTask::STSB,
                     GlueTask::QNLI, GlueTask::COLA, GlueTask::WNLI})
    EXPECT_EQ(parse_glue_task(glue_task_name(t)), t);
  expect_error([] { parse_glue_task("mnli"); },
               {"mnli", "sst2", "mrpc", "rte", "stsb", "qnli", "cola", "wnli"});
}

TEST(GlueTask, Properties) {
  EXPECT_FALSE(glue_task_is_pair(GlueTask::SST2));
  EXPECT_FALSE(glue_task_is_pair(GlueTask::COLA));
  EXPECT_TRUE(glue_task_is_pair(GlueTask::QNLI));
  EXPECT_TRUE(glue_task_is_regression(GlueTask::STSB));
  EXPECT_FALSE(glue_task_is_regression(GlueTask::MRPC));
  EXPECT_EQ(glue_task_num_labels(GlueTask::STSB), 1);
  EXPECT_EQ(glue_task_num_labels(GlueTask::WNLI), 2);
}

TEST(GlueData, Sst2Dev) {
  const GlueDataset ds = read_glue_tsv(GlueTask::SST2, kGlue / "SST-2/dev.tsv");
  EXPECT_EQ(ds.task, GlueTask::SST2);
  EXPECT_FALSE(ds.is_pair);
  EXPECT_FALSE(ds.is_regression);
  EXPECT_EQ(ds.num_labels, 2);
  EXPECT_EQ(ds.file, kGlue / "SST-2/dev.tsv");
  ASSERT_EQ(ds.examples.size(), 872u);
  EXPECT_EQ(count_label(ds, 1), 444);
  EXPECT_EQ(count_label(ds, 0), 428);
  // Text is kept byte for byte, including the space before the tab.
  EXPECT_EQ(ds.examples.front().a, "it 's a charming and often affecting journey . ");
  EXPECT_EQ(ds.examples.front().b, "");
  EXPECT_EQ(ds.examples.front().label, 1);
  EXPECT_EQ(ds.examples.back().a,
            "looking aristocratic , luminous yet careworn in jane hamilton 's exemplary costumes "
            ", rampling gives a performance that could not be improved upon . ' ");
}

TEST(GlueData, Sst2TrainWithTextHeader) {
  const GlueDataset ds = read_glue_tsv(GlueTask::SST2, kGlue / "SST-2/train.tsv");
  ASSERT_EQ(ds.examples.size(), 67349u);
  EXPECT_EQ(count_label(ds, 1), 37569);
  EXPECT_EQ(ds.examples.front().a, "hide new secretions from the parental units ");
  EXPECT_EQ(ds.examples.front().label, 0);
}

TEST(GlueData, MrpcDevStripsBom) {
  const GlueDataset ds = read_glue_tsv(GlueTask::MRPC, kGlue / "MRPC/dev.tsv");
  EXPECT_TRUE(ds.is_pair);
  ASSERT_EQ(ds.examples.size(), 408u);
  EXPECT_EQ(count_label(ds, 1), 279);
  EXPECT_EQ(count_label(ds, 0), 129);
  const GlueExample& first = ds.examples.front();
  EXPECT_EQ(first.a,
            "He said the foodservice pie business doesn't fit the company's long-term growth "
            "strategy.");
  // Original GLUE is not CSV-quoted: this unbalanced quote is part of the sentence.
  EXPECT_EQ(first.b, "\"The foodservice pie business does not fit our long-term growth strategy.");
  EXPECT_EQ(first.label, 1);
  const GlueExample& last = ds.examples.back();
  EXPECT_EQ(last.b,
            "In Soviet times the Beatles' music \"was considered propaganda of an alien ideology.");
}

TEST(GlueData, MrpcTrain) {
  const GlueDataset ds = read_glue_tsv(GlueTask::MRPC, kGlue / "MRPC/train.tsv");
  ASSERT_EQ(ds.examples.size(), 3668u);
  EXPECT_EQ(count_label(ds, 1), 2474);
  EXPECT_EQ(ds.examples.back().label, 0);
}

TEST(GlueData, RteGlueLayoutTextLabels) {
  const GlueDataset ds = read_glue_tsv(GlueTask::RTE, kGlue / "RTE/dev.tsv");
  ASSERT_EQ(ds.examples.size(), 277u);
  EXPECT_EQ(count_label(ds, 0), 146);  // entailment is HF class 0
  EXPECT_EQ(count_label(ds, 1), 131);
  EXPECT_EQ(ds.examples.front().b, "Christopher Reeve had an accident.");
  EXPECT_EQ(ds.examples.front().label, 1);  // not_entailment
  EXPECT_EQ(ds.examples.back().b, "Greenpeace director said that peace is terrorism.");
}

TEST(GlueData, RteHfLayoutIsUnquotedToTheGlueText) {
  const GlueDataset glue = read_glue_tsv(GlueTask::RTE, kGlue / "RTE/dev.tsv");
  const GlueDataset hf = read_glue_tsv(GlueTask::RTE, kGlue / "RTE/dev_hf.tsv");
  ASSERT_EQ(hf.examples.size(), 277u);
  EXPECT_EQ(count_label(hf, 0), 146);
  // The HF export CSV-quotes 48 of the 277 rows; undone, every row matches the original GLUE file.
  for (size_t i = 0; i < glue.examples.size(); ++i) {
    EXPECT_EQ(hf.examples[i].a, glue.examples[i].a) << "row " << i;
    EXPECT_EQ(hf.examples[i].b, glue.examples[i].b) << "row " << i;
    EXPECT_EQ(hf.examples[i].label, glue.examples[i].label) << "row " << i;
  }
  const std::string& a = hf.examples.back().a;
  EXPECT_EQ(a.substr(0, 72),
            "Danny Kennedy, Greenpeace campaigns director, said: \"The burden of proof");
  EXPECT_EQ(a.substr(a.size() - 20), "political opinions.\"");
}

TEST(GlueData, RteTrain) {
  const GlueDataset ds = read_glue_tsv(GlueTask::RTE, kGlue / "RTE/train.tsv");
  ASSERT_EQ(ds.examples.size(), 2490u);
  EXPECT_EQ(count_label(ds, 0), 1249);
  EXPECT_EQ(ds.examples.front().a, "No Weapons of Mass Destruction Found in Iraq Yet.");
  EXPECT_EQ(ds.examples.front().label, 1);
}

TEST(GlueData, StsbDevFindsColumnsByName) {
  const GlueDataset ds = read_glue_tsv(GlueTask::STSB, kGlue / "STS-B/dev.tsv");
  EXPECT_TRUE(ds.is_regression);
  EXPECT_EQ(ds.num_labels, 1);
  ASSERT_EQ(ds.examples.size(), 1500u);
  EXPECT_EQ(ds.examples.front().a, "A man with a hard hat is dancing.");
  EXPECT_EQ(ds.examples.front().b, "A man wearing a hard hat is dancing.");
  EXPECT_EQ(ds.examples.front().label, 5.0f);
  EXPECT_EQ(ds.examples.back().a, "New video shows US police officers beating mentally-ill man");
  EXPECT_EQ(ds.examples.back().label, 0.0f);
  double sum = 0;
  for (const GlueExample& ex : ds.examples) sum += ex.label;
  EXPECT_NEAR(sum, 3545.861333, 1e-3);  // sum of the score column
}

TEST(GlueData, StsbTrain) {
  const GlueDataset ds = read_glue_tsv(GlueTask::STSB, kGlue / "STS-B/train.tsv");
  ASSERT_EQ(ds.examples.size(), 5749u);
  EXPECT_EQ(ds.examples.front().a, "A plane is taking off.");
}

TEST(GlueData, ColaRawWithoutHeader) {
  const GlueDataset ds = read_glue_tsv(GlueTask::COLA, kGlue / "CoLA/dev.tsv");
  ASSERT_EQ(ds.examples.size(), 1043u);
  EXPECT_EQ(count_label(ds, 1), 721);
  EXPECT_EQ(ds.examples.front().a, "The sailors rode the breeze clear of the rocks.");
  EXPECT_EQ(ds.examples.front().b, "");
  // The file has no final newline; the last row must still be read whole.
  EXPECT_EQ(ds.examples.back().a, "John talked to Bill about himself.");

  const GlueDataset train =
      read_glue_tsv(GlueTask::COLA, kGlue / "CoLA/cola_public_raw/in_domain_train.tsv");
  ASSERT_EQ(train.examples.size(), 8551u);
  EXPECT_EQ(count_label(train, 1), 6023);
  EXPECT_EQ(train.examples.front().a,
            "Our friends won't buy this analysis, let alone the next one we propose.");
  EXPECT_EQ(read_glue_tsv(GlueTask::COLA, kGlue / "CoLA/cola_public_raw/in_domain_dev.tsv")
                .examples.size(),
            527u);
  EXPECT_EQ(read_glue_tsv(GlueTask::COLA, kGlue / "CoLA/cola_public_raw/out_of_domain_dev.tsv")
                .examples.size(),
            516u);
}

TEST(GlueData, WnliDev) {
  const GlueDataset ds = read_glue_tsv(GlueTask::WNLI, kGlue / "WNLI/dev.tsv");
  ASSERT_EQ(ds.examples.size(), 71u);
  EXPECT_EQ(count_label(ds, 1), 31);  // 1 = entailment in both GLUE and HF
  EXPECT_EQ(ds.examples.front().a, "The drain is clogged with hair. It has to be cleaned.");
  EXPECT_EQ(ds.examples.front().b, "The hair has to be cleaned.");
  EXPECT_EQ(ds.examples.back().b, "Eric was not particularly eager to see it.");
}

TEST(GlueData, QnliTextLabelsCrlfBomAndNoFinalNewline) {
  const fs::path f = write_tmp("qnli.tsv",
                               "\xEF\xBB\xBFindex\tquestion\tsentence\tlabel\r\n"
                               "0\tWho?\tHe did \"it.\tnot_entailment\r\n"
                               "1\tWhat?\tThis.\tentailment");
  const GlueDataset ds = read_glue_tsv(GlueTask::QNLI, f);
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[0].a, "Who?");
  EXPECT_EQ(ds.examples[0].b, "He did \"it.");
  EXPECT_EQ(ds.examples[0].label, 1);
  EXPECT_EQ(ds.examples[1].b, "This.");
  EXPECT_EQ(ds.examples[1].label, 0);
}

TEST(GlueData, ColaWithHfHeader) {
  const fs::path f = write_tmp("cola_hf.tsv",
                               "sentence\tlabel\tidx\n"
                               "\"He said \"\"hi\"\".\"\t1\t0\n"
                               "Him saw she.\t0\t1\n");
  const GlueDataset ds = read_glue_tsv(GlueTask::COLA, f);
  ASSERT_EQ(ds.examples.size(), 2u);
  EXPECT_EQ(ds.examples[0].a, "He said \"hi\".");
  EXPECT_EQ(ds.examples[0].label, 1);
  EXPECT_EQ(ds.examples[1].a, "Him saw she.");
  EXPECT_EQ(ds.examples[1].label, 0);
}

TEST(GlueData, WrongColumnCountNamesFileAndLine) {
  const fs::path f = write_tmp("bad_cols.tsv", "sentence\tlabel\ngood\t1\nno label here\nx\t0\n");
  expect_error([&] { read_glue_tsv(GlueTask::SST2, f); },
               {f.string() + ":3", "expected 2", "found 1"});
}

TEST(GlueData, UnknownLabelNamesFileLineAndValue) {
  const fs::path f = write_tmp("bad_label.tsv",
                               "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n"
                               "1\ta\tb\tcontradiction\n");
  expect_error([&] { read_glue_tsv(GlueTask::RTE, f); },
               {f.string() + ":3", "'contradiction'", "not_entailment"});
  // A class id the task does not have is as wrong as an unknown name.
  const fs::path g = write_tmp("bad_id.tsv", "sentence\tlabel\nfine\t2\n");
  expect_error([&] { read_glue_tsv(GlueTask::SST2, g); }, {g.string() + ":2", "'2'"});
}

TEST(GlueData, UnrecognisedHeaderNamesWhatWasFoundAndExpected) {
  const fs::path f = write_tmp("bad_header.tsv", "id\tfirst\tsecond\tgold\n0\ta\tb\t1\n");
  expect_error([&] { read_glue_tsv(GlueTask::WNLI, f); },
               {f.string(), "id<TAB>first<TAB>second<TAB>gold", "'sentence1'", "'sentence2'"});
  // A header-less SST-2 file: the first data row is reported as the header found.
  const fs::path g = write_tmp("no_header.tsv", "great movie\t1\n");
  expect_error([&] { read_glue_tsv(GlueTask::SST2, g); },
               {g.string(), "great movie<TAB>1", "'sentence' or 'text'"});
  const fs::path h = write_tmp("cola_bad.tsv", "a\tb\n");
  expect_error([&] { read_glue_tsv(GlueTask::COLA, h); }, {h.string(), "no header with 4 columns"});
}

TEST(GlueData, StsbScoreMustBeANumberInRange) {
  const std::string header = "sentence1\tsentence2\tscore\n";
  const fs::path f = write_tmp("stsb_nan.tsv", header + "a\tb\t3.2\na\tb\thigh\n");
  expect_error([&] { read_glue_tsv(GlueTask::STSB, f); }, {f.string() + ":3", "'high'"});
  const fs::path g = write_tmp("stsb_range.tsv", header + "a\tb\t7\n");
  expect_error([&] { read_glue_tsv(GlueTask::STSB, g); }, {g.string() + ":2", "0..5"});
}

TEST(GlueData, BrokenCsvQuoteInHfLayout) {
  const fs::path f = write_tmp("hf_bad_quote.tsv",
                               "sentence1\tsentence2\tlabel\tidx\n\"open\tb\t0\t0\n");
  expect_error([&] { read_glue_tsv(GlueTask::RTE, f); }, {f.string() + ":2", "CSV quote"});
}

TEST(GlueData, EmptyMissingAndHeaderOnlyFiles) {
  const fs::path empty = write_tmp("empty.tsv", "");
  expect_error([&] { read_glue_tsv(GlueTask::SST2, empty); }, {empty.string(), "empty"});
  const fs::path header_only = write_tmp("header_only.tsv", "sentence\tlabel\n");
  expect_error([&] { read_glue_tsv(GlueTask::SST2, header_only); },
               {header_only.string(), "no data rows"});
  const fs::path missing = testing::scratch("glue_data") / "does_not_exist.tsv";
  expect_error([&] { read_glue_tsv(GlueTask::SST2, missing); },
               {missing.string(), "cannot open"});
}

}  // namespace
}  // namespace tquant
