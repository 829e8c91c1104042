// End-to-end: the CLI (calibrate, compare, export qdq) on small models and the PP-OCR models.
#include <gtest/gtest.h>

TEST(QuantE2E, Placeholder) {}
