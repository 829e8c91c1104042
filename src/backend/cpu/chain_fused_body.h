// The fused run's loop, written once over an instruction set's vector operations (S: the traits
// of chain_fused_avx512.cpp or chain_fused_avx2.cpp). Included only by those translation units,
// inside their anonymous namespace: every function here is compiled for that ISA alone.
//
// Each operation is what the link's own loop computes (kernels_chain.cpp, ops::activation /
// ops::elementwise in float): S::max_of(a, b) is std::max(a, b) = (a < b) ? b : a, which is
// vmaxps(b, a) (the second operand wins ties and NaN); min_of likewise; LeakyRelu's and
// HardSigmoid's products and sums are separate roundings (no FMA).

template <class S, class F>
inline void with_binary(Binary b, F&& f) {
  using V = typename S::V;
  switch (b) {
    case Binary::kAdd: f([](V x, V y) { return S::add(x, y); }); return;
    case Binary::kMul: f([](V x, V y) { return S::mul(x, y); }); return;
    case Binary::kSub: f([](V x, V y) { return S::sub(x, y); }); return;
    case Binary::kDiv: f([](V x, V y) { return S::div(x, y); }); return;
    case Binary::kMax: f([](V x, V y) { return S::max_of(x, y); }); return;
    case Binary::kMin: f([](V x, V y) { return S::min_of(x, y); }); return;
  }
}

template <class S, class F>
inline void with_unary(const Op& op, F&& f) {
  using V = typename S::V;
  switch (op.unary) {
    case Unary::kCapture: return;  // handled by the caller
    case Unary::kRelu: f([](V x) { return S::relu(x); }); return;
    case Unary::kLeakyRelu: {
      const V slope = S::set1(op.a);
      f([slope](V x) { return S::leaky_relu(x, slope); });
      return;
    }
    case Unary::kClip: {
      const V lo = S::set1(op.a), hi = S::set1(op.b);
      f([lo, hi](V x) { return S::min_of(S::max_of(x, lo), hi); });
      return;
    }
    case Unary::kHardSigmoid: {
      const V alpha = S::set1(op.a), beta = S::set1(op.b), zero = S::set1(0.f), one = S::set1(1.f);
      f([=](V x) { return S::max_of(zero, S::min_of(one, S::add(S::mul(alpha, x), beta))); });
      return;
    }
    case Unary::kRoundFp16: f([](V x) { return S::round_fp16(x); }); return;
    case Unary::kRoundInt8: {
      const V scale = S::set1(op.a);
      f([scale](V x) { return S::fake_quant_int8(x, S::int8_code(x, scale), scale); });
      return;
    }
  }
}

// S::kGroup vectors per step: that many independent dependency chains in flight, and one dispatch
// per link for kGroup * kWidth values. The run's fields are copied to locals first (the codes'
// byte stores may alias anything, so the compiler would reload them after each).
template <class S>
inline void run_body(const Run& run) {
  using V = typename S::V;
  using M = typename S::M;
  constexpr int64_t W = S::kWidth;
  constexpr int G = S::kGroup;
  const Run r = run;
  bool reads_x0 = false;
  for (int o = 0; o < r.n_ops; ++o) {
    const Op& op = r.ops[o];
    if (op.form == Form::kUnary && op.unary == Unary::kCapture) break;
    reads_x0 = reads_x0 || op.form == Form::kInputRight || op.form == Form::kInputLeft;
  }
  const bool sums = r.sums_s32 || r.sums_f32;
  // Codes of a run ending in an INT8 rounding onto the codes' own grid: the rounding's code is the
  // code (codes_s8 of fl(q * scale) gives q back: kernels_int8.cpp), so the last rounding's
  // multiply and the codes' multiply and clamp are left out.
  const Op* last = r.n_ops ? &r.ops[r.n_ops - 1] : nullptr;
  const bool codes_of_last = r.codes && last && last->form == Form::kUnary && last->unary == Unary::kRoundInt8 &&
                             last->b != 0.f && r.inv_scale == 1.f / last->a;
  const int n_ops = codes_of_last ? r.n_ops - 1 : r.n_ops;
  const bool x0_is_input = sums || r.x0 == r.s;
  for (int64_t i = 0; i < r.m; i += G * W) {
    M k[G];
    V v[G], x[G];
    const int64_t at = sums ? i % r.period : 0;
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
      const int64_t i_j = i + j * W;
      k[j] = S::mask(r.m - i_j);
      if (!sums) {
        v[j] = S::load(r.s + i_j, k[j]);
      } else {
        v[j] = S::mul(r.sums_s32 ? S::load_s32(r.sums_s32 + i_j, k[j]) : S::load(r.sums_f32 + i_j, k[j]),
                      S::load(r.alpha + at + j * W, k[j]));
        if (r.bias) v[j] = S::add(v[j], S::load(r.bias + at + j * W, k[j]));
      }
      x[j] = !reads_x0 ? S::set1(0.f) : x0_is_input ? v[j] : S::load(r.x0 + i_j, k[j]);
    }
    for (int o = 0; o < n_ops; ++o) {
      const Op& op = r.ops[o];
      switch (op.form) {
        case Form::kConstRight: {
          const V c = S::set1(op.a);
          with_binary<S>(op.binary, [&](auto f) {
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) v[j] = f(v[j], c);
          });
          break;
        }
        case Form::kConstLeft: {
          const V c = S::set1(op.a);
          with_binary<S>(op.binary, [&](auto f) {
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) v[j] = f(c, v[j]);
          });
          break;
        }
        case Form::kInputRight:
          with_binary<S>(op.binary, [&](auto f) {
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) v[j] = f(v[j], x[j]);
          });
          break;
        case Form::kInputLeft:
          with_binary<S>(op.binary, [&](auto f) {
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) v[j] = f(x[j], v[j]);
          });
          break;
        case Form::kUnary:
          if (op.unary == Unary::kCapture) {
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) x[j] = v[j];
            break;
          }
          with_unary<S>(op, [&](auto f) {
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) v[j] = f(v[j]);
          });
          break;
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
      const int64_t i_j = i + j * W;
      if (codes_of_last) {
        // The last INT8 rounding's code itself: rne(x / scale) clamped as the codes are (a NaN -128).
        const Op& last = r.ops[r.n_ops - 1];
        const V q = S::int8_code(v[j], S::set1(last.a));
        S::store_codes(r.codes + i_j, S::min_of(S::max_of(S::set1(-128.f), q), S::set1(127.f)), k[j], r.m - i_j);
      } else if (r.codes) {
        const V q = S::min_of(S::max_of(S::set1(-128.f), S::mul(v[j], S::set1(r.inv_scale))), S::set1(127.f));
        S::store_codes(r.codes + i_j, q, k[j], r.m - i_j);
      } else {
        S::store(r.v + i_j, v[j], k[j]);
      }
      if (r.x0_out) S::store(r.x0_out + i_j, x[j], k[j]);
    }
  }
}
