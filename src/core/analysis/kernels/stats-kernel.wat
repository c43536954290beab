;; The fused statistics pass of tensor-stats.ts in WebAssembly SIMD (4 float32 lanes at a time),
;; per-element AND per-row figures, so that JS never walks the rows. Built into
;; stats-kernel-wasm.ts by scripts/build-kernels.mjs.
;;
;; stats(data, nRows, d, counts, colAbs, colZeros, st, norms, epsBits, errNext, errEvery, int8)
;; walks nRows rows of d float32 values (d a multiple of 4) at `data` and
;;  - counts |w| bits >>> 21 into 4 histograms of 1024 i32 bins at address 0, one per lane (4096
;;    bytes apart): neighbours often share a bin, and one histogram would chain their
;;    increments through memory;
;;  - adds to counts[0..2] (i32) the exact zeros, |w| <= epsilon (by bits) and |w| >= 65520
;;    (the values float16 rounds to Infinity);
;;  - adds |w| per column into colAbs (f64[d]) and exact zeros per column into colZeros (i32[d]);
;;  - writes each row's L2 norm (f32) at norms[r];
;;  - updates the kernel state `st` (f64 slots, the layout of tensor-stats.ts S_*): extremes,
;;    Chan's running mean / M2 (row by row, as the JS loop), sums of |w| and w^2, zero rows,
;;    non-finite values, and, on the rows r = errNext, errNext + errEvery, ..., the float16 and
;;    (if int8) symmetric per-row int8 round-trip errors, added in the order of
;;    roundTripRowErrors (4 partial sums by column mod 4).
;; Every sum is float64 and made of the same operations, in the same order, as the JS loop's
;; (x * x of a float32 is exact), so the figures are bit-identical to wasmStatsRows' former JS
;; part. NaN / Infinity lanes are replaced by +0 first; a row holding some (never in sane
;; weights) is fixed up by a scalar look: its extremes among the finite values, and its column
;; zeros; the total counts and histogram bin 0 are corrected at the end.
;;
;; hist16 / low16 / sum4 / locate: the counting passes and rank lookups of exact selection
;; (magnitude-select.ts), tridiag / ql: the eigenvalues of a symmetric matrix (linalg.ts), and
;; heat: the row-norm summary (tensor-report.ts), below; they run on a private instance of the
;; module (private-kernel.ts).
;;
;; gram(row, d, g, x) adds the upper triangle (and a few entries below the diagonal, which the
;; caller overwrites) of x x^T into the float64 d x d matrix at g, x being the float32 row at
;; `row` promoted into the f64[d] scratch at `x`; returns 0 without adding anything when the
;; row holds a non-finite value, else 1. Same products and sums as the JS addGramRow.
(module
  (memory (export "memory") 1)
  (func (export "stats")
    (param $data i32) (param $nRows i32) (param $d i32) (param $counts i32)
    (param $colAbs i32) (param $colZeros i32) (param $st i32) (param $norms i32)
    (param $eps i32) (param $errNext i32) (param $errEvery i32) (param $int8 i32)
    (local $r i32) (local $p i32) (local $rowStart i32) (local $rowEnd i32) (local $ca i32) (local $cz i32)
    (local $h i32) (local $bad i32) (local $nonFinite i32) (local $zeroRows i32) (local $errRows i32)
    (local $errN i32) (local $withI8 i32)
    (local $rs f64) (local $rsumS f64) (local $nb f64) (local $cn f64) (local $cmean f64) (local $cm2 f64)
    (local $mb f64) (local $nn f64) (local $delta f64) (local $sAbs f64) (local $sSq f64) (local $errSq f64)
    (local $f16Sq f64) (local $i8Sq f64) (local $ra f64)
    (local $rmnS f32) (local $rmxS f32) (local $smin f32) (local $smax f32)
    (local $v v128) (local $a v128) (local $m v128) (local $k v128) (local $epsV v128)
    (local $zc v128) (local $nc v128) (local $oc v128) (local $badc v128)
    (local $rsum v128) (local $rsq v128) (local $rabs v128) (local $rmin v128) (local $rmax v128)
    (local $gmin v128) (local $gmax v128)
    (local $xl v128) (local $xh v128) (local $al v128) (local $ah v128)
    (local $e v128) (local $fL v128) (local $fH v128) (local $iL v128) (local $iH v128)
    (local $f16max v128) (local $i8max v128) (local $invV v128) (local $scaleV v128)
    (local $cAbs v128) (local $cBad v128) (local $cOver v128) (local $cBin v128)
    (local.set $epsV (i32x4.splat (local.get $eps)))
    ;; the main loop's constants, set once (the compiler may rebuild a v128.const per use)
    (local.set $cAbs (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
    (local.set $cBad (v128.const i32x4 0x7f7fffff 0x7f7fffff 0x7f7fffff 0x7f7fffff))
    (local.set $cOver (v128.const i32x4 0x477fefff 0x477fefff 0x477fefff 0x477fefff))
    (local.set $cBin (v128.const i32x4 0xffc 0xffc 0xffc 0xffc))
    (local.set $gmin (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
    (local.set $gmax (v128.const i32x4 0x807fffff 0x807fffff 0x807fffff 0x807fffff))
    (local.set $smin (f32.const inf))
    (local.set $smax (f32.const -inf))
    (local.set $cn (f64.load offset=16 (local.get $st)))
    (local.set $cmean (f64.load offset=24 (local.get $st)))
    (local.set $cm2 (f64.load offset=32 (local.get $st)))
    (local.set $f16Sq (f64.load offset=56 (local.get $st)))
    (local.set $i8Sq (f64.load offset=80 (local.get $st)))
    (local.set $p (local.get $data))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $nRows)))
        (local.set $rsum (v128.const i64x2 0 0))
        (local.set $rsq (v128.const i64x2 0 0))
        (local.set $rabs (v128.const i64x2 0 0))
        (local.set $badc (v128.const i64x2 0 0))
        ;; the keys of +Infinity and -Infinity
        (local.set $rmin (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
        (local.set $rmax (v128.const i32x4 0x807fffff 0x807fffff 0x807fffff 0x807fffff))
        (local.set $ca (local.get $colAbs))
        (local.set $cz (local.get $colZeros))
        (local.set $rowStart (local.get $p))
        (local.set $rowEnd (i32.add (local.get $p) (i32.shl (local.get $d) (i32.const 2))))
        (loop $cols
          (local.set $v (v128.load (local.get $p)))
          (local.set $a (v128.and (local.get $v) (local.get $cAbs)))
          ;; non-finite lanes (|bits| >= Infinity's) counted, then made +0
          (local.set $m (i32x4.gt_s (local.get $a) (local.get $cBad)))
          (local.set $badc (i32x4.sub (local.get $badc) (local.get $m)))
          (local.set $v (v128.andnot (local.get $v) (local.get $m)))
          (local.set $a (v128.andnot (local.get $a) (local.get $m)))
          ;; zeros (total and per column), near zeros, float16 overflow
          (local.set $m (i32x4.eq (local.get $a) (v128.const i64x2 0 0)))
          (local.set $zc (i32x4.sub (local.get $zc) (local.get $m)))
          (v128.store (local.get $cz) (i32x4.sub (v128.load (local.get $cz)) (local.get $m)))
          ;; |bits| and epsilon's bits are < 2^31: signed compares; nc counts |w| > epsilon
          (local.set $nc (i32x4.sub (local.get $nc) (i32x4.gt_s (local.get $a) (local.get $epsV))))
          (local.set $oc (i32x4.sub (local.get $oc) (i32x4.gt_s (local.get $a) (local.get $cOver))))
          ;; histogram: lane k counts into the k-th histogram; byte offsets of the bins
          ;; ((a >>> 21) * 4) computed for the 4 lanes at once
          (local.set $m (v128.and (i32x4.shr_u (local.get $a) (i32.const 19)) (local.get $cBin)))
          (local.set $h (i32x4.extract_lane 0 (local.get $m)))
          (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
          (local.set $h (i32x4.extract_lane 1 (local.get $m)))
          (i32.store offset=4096 (local.get $h) (i32.add (i32.load offset=4096 (local.get $h)) (i32.const 1)))
          (local.set $h (i32x4.extract_lane 2 (local.get $m)))
          (i32.store offset=8192 (local.get $h) (i32.add (i32.load offset=8192 (local.get $h)) (i32.const 1)))
          (local.set $h (i32x4.extract_lane 3 (local.get $m)))
          (i32.store offset=12288 (local.get $h) (i32.add (i32.load offset=12288 (local.get $h)) (i32.const 1)))
          ;; extremes on int32 keys that order like the floats (negative: low 31 bits flipped;
          ;; no NaN is left, and -0 < +0 as Math.min has it): an integer min / max is one
          ;; instruction, the float one (NaN and -0 rules) several
          (local.set $k (v128.xor (local.get $v) (v128.and (i32x4.shr_s (local.get $v) (i32.const 31)) (local.get $cAbs))))
          (local.set $rmin (i32x4.min_s (local.get $rmin) (local.get $k)))
          (local.set $rmax (i32x4.max_s (local.get $rmax) (local.get $k)))
          ;; float64 sums: lanes 0-1 and 2-3
          (local.set $xl (f64x2.promote_low_f32x4 (local.get $v)))
          (local.set $xh (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
          ;; |x| promoted from the sign-cleared lanes (f64x2.abs would rebuild its mask each time)
          (local.set $al (f64x2.promote_low_f32x4 (local.get $a)))
          (local.set $ah (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $a) (local.get $a))))
          (local.set $rsum (f64x2.add (local.get $rsum) (f64x2.add (local.get $xl) (local.get $xh))))
          (local.set $rsq (f64x2.add (local.get $rsq)
            (f64x2.add (f64x2.mul (local.get $xl) (local.get $xl)) (f64x2.mul (local.get $xh) (local.get $xh)))))
          (local.set $rabs (f64x2.add (local.get $rabs) (f64x2.add (local.get $al) (local.get $ah))))
          (v128.store (local.get $ca) (f64x2.add (v128.load (local.get $ca)) (local.get $al)))
          (v128.store offset=16 (local.get $ca) (f64x2.add (v128.load offset=16 (local.get $ca)) (local.get $ah)))
          (local.set $ca (i32.add (local.get $ca) (i32.const 32)))
          (local.set $cz (i32.add (local.get $cz) (i32.const 16)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $cols (i32.lt_u (local.get $p) (local.get $rowEnd))))
        ;; ---- the row's figures
        (local.set $rsumS (f64.add (f64x2.extract_lane 0 (local.get $rsum)) (f64x2.extract_lane 1 (local.get $rsum))))
        (local.set $rs (f64.add (f64x2.extract_lane 0 (local.get $rsq)) (f64x2.extract_lane 1 (local.get $rsq))))
        (local.set $sAbs (f64.add (local.get $sAbs)
          (f64.add (f64x2.extract_lane 0 (local.get $rabs)) (f64x2.extract_lane 1 (local.get $rabs)))))
        (local.set $sSq (f64.add (local.get $sSq) (local.get $rs)))
        (local.set $zeroRows (i32.add (local.get $zeroRows) (f64.eq (local.get $rs) (f64.const 0))))
        (f32.store (local.get $norms) (f32.demote_f64 (f64.sqrt (local.get $rs))))
        (local.set $bad
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $badc)) (i32x4.extract_lane 1 (local.get $badc)))
            (i32.add (i32x4.extract_lane 2 (local.get $badc)) (i32x4.extract_lane 3 (local.get $badc)))))
        (if (local.get $bad)
          (then
            ;; NaN / Infinity in this row: out of the column zeros, extremes among finite values
            (local.set $rmnS (f32.const inf))
            (local.set $rmxS (f32.const -inf))
            (local.set $h (local.get $rowStart))
            (local.set $cz (local.get $colZeros))
            (loop $fix
              (if (i32.ge_u (i32.and (i32.load (local.get $h)) (i32.const 0x7fffffff)) (i32.const 0x7f800000))
                (then (i32.store (local.get $cz) (i32.sub (i32.load (local.get $cz)) (i32.const 1))))
                (else
                  (local.set $rmnS (f32.min (local.get $rmnS) (f32.load (local.get $h))))
                  (local.set $rmxS (f32.max (local.get $rmxS) (f32.load (local.get $h))))))
              (local.set $h (i32.add (local.get $h) (i32.const 4)))
              (local.set $cz (i32.add (local.get $cz) (i32.const 4)))
              (br_if $fix (i32.lt_u (local.get $h) (local.get $rowEnd))))
            (local.set $nonFinite (i32.add (local.get $nonFinite) (local.get $bad)))
            ;; a row of non-finite values only leaves +-Infinity here: no effect
            (local.set $smin (f32.min (local.get $smin) (local.get $rmnS)))
            (local.set $smax (f32.max (local.get $smax) (local.get $rmxS))))
          (else
            (local.set $gmin (i32x4.min_s (local.get $gmin) (local.get $rmin)))
            (local.set $gmax (i32x4.max_s (local.get $gmax) (local.get $rmax)))))
        (local.set $nb (f64.convert_i32_u (i32.sub (local.get $d) (local.get $bad))))
        (if (f64.gt (local.get $nb) (f64.const 0))
          (then
            ;; Chan et al.: this row's (mean, M2) into the running figures, as the JS loop
            (local.set $mb (f64.div (local.get $rsumS) (local.get $nb)))
            (local.set $nn (f64.add (local.get $cn) (local.get $nb)))
            (local.set $delta (f64.sub (local.get $mb) (local.get $cmean)))
            (local.set $cmean (f64.add (local.get $cmean)
              (f64.div (f64.mul (local.get $delta) (local.get $nb)) (local.get $nn))))
            (local.set $cm2 (f64.add (local.get $cm2)
              (f64.add
                (f64.max (f64.const 0) (f64.sub (local.get $rs) (f64.mul (local.get $rsumS) (local.get $mb))))
                (f64.div
                  (f64.mul (f64.mul (f64.mul (local.get $delta) (local.get $delta)) (local.get $cn)) (local.get $nb))
                  (local.get $nn)))))
            (local.set $cn (local.get $nn))))
        ;; ---- round-trip errors of a sampled row, over the row again (still in L1)
        (if (i32.eq (local.get $r) (local.get $errNext))
          (then
            (local.set $errNext (i32.add (local.get $errNext) (local.get $errEvery)))
            (local.set $errRows (i32.add (local.get $errRows) (i32.const 1)))
            (if (f64.gt (local.get $nb) (f64.const 0))
              (then
                (if (i32.eqz (local.get $bad))
                  (then
                    (local.set $rmnS (call $keyMin (local.get $rmin)))
                    (local.set $rmxS (call $keyMax (local.get $rmax)))))
                (local.set $errN (i32.add (local.get $errN) (i32.sub (local.get $d) (local.get $bad))))
                (local.set $errSq (f64.add (local.get $errSq) (local.get $rs)))
                (local.set $ra (f64.max (f64.neg (f64.promote_f32 (local.get $rmnS))) (f64.promote_f32 (local.get $rmxS))))
                (local.set $withI8 (i32.and (i32.ne (local.get $int8) (i32.const 0)) (f64.gt (local.get $ra) (f64.const 0))))
                (local.set $scaleV (f64x2.splat (f64.div (local.get $ra) (f64.const 127))))
                (local.set $invV (f64x2.splat (f64.div (f64.const 127) (local.get $ra))))
                (local.set $fL (v128.const i64x2 0 0))
                (local.set $fH (v128.const i64x2 0 0))
                (local.set $iL (v128.const i64x2 0 0))
                (local.set $iH (v128.const i64x2 0 0))
                (local.set $h (local.get $rowStart))
                (loop $errs
                  (local.set $v (v128.load (local.get $h)))
                  (local.set $a (v128.and (local.get $v) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
                  (local.set $m (i32x4.ge_u (local.get $a) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
                  (local.set $v (v128.andnot (local.get $v) (local.get $m)))
                  (local.set $a (v128.andnot (local.get $a) (local.get $m)))
                  ;; float16 error: from 2^-14 (0x38800000) the value rounded to 11 significant
                  ;; bits on its bits (round to nearest even: add 0xfff + the lowest kept bit, clear
                  ;; the 13 dropped bits); below, to a multiple of 2^-24 by adding and taking away
                  ;; 0.75 (whose ulp is 2^-24). Either difference is exact in float32 (Sterbenz),
                  ;; and |e| is what the JS reference gets (a tie may round the other way there:
                  ;; the same |e|). Lanes from 65520 (overflow) have no error figure: 0.
                  (local.set $e (v128.bitselect
                    (f32x4.sub (local.get $v)
                      (v128.and
                        (i32x4.add (local.get $v)
                          (i32x4.add (v128.const i32x4 0xfff 0xfff 0xfff 0xfff)
                            (v128.and (i32x4.shr_u (local.get $v) (i32.const 13)) (v128.const i32x4 1 1 1 1))))
                        (v128.const i32x4 0xffffe000 0xffffe000 0xffffe000 0xffffe000)))
                    (f32x4.sub (local.get $v)
                      (f32x4.sub (f32x4.add (local.get $v) (v128.const f32x4 0.75 0.75 0.75 0.75))
                        (v128.const f32x4 0.75 0.75 0.75 0.75)))
                    (i32x4.ge_u (local.get $a) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))))
                  (local.set $e (v128.andnot (local.get $e)
                    (i32x4.ge_u (local.get $a) (v128.const i32x4 0x477ff000 0x477ff000 0x477ff000 0x477ff000))))
                  ;; |e| >= 0, never NaN: the integer max of the bits is the float max
                  (local.set $f16max (i32x4.max_s (local.get $f16max)
                    (v128.and (local.get $e) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))))
                  (local.set $xl (f64x2.promote_low_f32x4 (local.get $e)))
                  (local.set $xh (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $e) (local.get $e))))
                  (local.set $fL (f64x2.add (local.get $fL) (f64x2.mul (local.get $xl) (local.get $xl))))
                  (local.set $fH (f64x2.add (local.get $fH) (f64x2.mul (local.get $xh) (local.get $xh))))
                  (if (local.get $withI8)
                    (then
                      ;; int8: x - round(x * 127 / ra) * ra / 127 in float64, rounded to nearest even
                      (local.set $xl (f64x2.promote_low_f32x4 (local.get $v)))
                      (local.set $xh (f64x2.promote_low_f32x4
                        (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
                      (local.set $xl (f64x2.sub (local.get $xl)
                        (f64x2.mul (f64x2.nearest (f64x2.mul (local.get $xl) (local.get $invV))) (local.get $scaleV))))
                      (local.set $xh (f64x2.sub (local.get $xh)
                        (f64x2.mul (f64x2.nearest (f64x2.mul (local.get $xh) (local.get $invV))) (local.get $scaleV))))
                      (local.set $iL (f64x2.add (local.get $iL) (f64x2.mul (local.get $xl) (local.get $xl))))
                      (local.set $iH (f64x2.add (local.get $iH) (f64x2.mul (local.get $xh) (local.get $xh))))
                      ;; |e| >= 0, never NaN: pmax (a < b ? b : a) is max here, in one instruction
                      (local.set $i8max (f64x2.pmax (local.get $i8max)
                        (f64x2.pmax (f64x2.abs (local.get $xl)) (f64x2.abs (local.get $xh)))))))
                  (local.set $h (i32.add (local.get $h) (i32.const 16)))
                  (br_if $errs (i32.lt_u (local.get $h) (local.get $rowEnd))))
                ;; the row's sums: (s0 + s2) + (s1 + s3), s_k the sum over columns = k mod 4
                (local.set $fL (f64x2.add (local.get $fL) (local.get $fH)))
                (local.set $f16Sq (f64.add (local.get $f16Sq)
                  (f64.add (f64x2.extract_lane 0 (local.get $fL)) (f64x2.extract_lane 1 (local.get $fL)))))
                (local.set $iL (f64x2.add (local.get $iL) (local.get $iH)))
                (local.set $i8Sq (f64.add (local.get $i8Sq)
                  (f64.add (f64x2.extract_lane 0 (local.get $iL)) (f64x2.extract_lane 1 (local.get $iL)))))))))
        (local.set $norms (i32.add (local.get $norms) (i32.const 4)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))
    ;; ---- totals into the state and counts (non-finite values were zeros to the lanes: taken
    ;; back out of the zero counts and of bin 0 of the first histogram)
    (local.set $smin (f32.min (local.get $smin) (call $keyMin (local.get $gmin))))
    (local.set $smax (f32.max (local.get $smax) (call $keyMax (local.get $gmax))))
    (f64.store (local.get $st) (f64.min (f64.load (local.get $st)) (f64.promote_f32 (local.get $smin))))
    (f64.store offset=8 (local.get $st) (f64.max (f64.load offset=8 (local.get $st)) (f64.promote_f32 (local.get $smax))))
    (f64.store offset=16 (local.get $st) (local.get $cn))
    (f64.store offset=24 (local.get $st) (local.get $cmean))
    (f64.store offset=32 (local.get $st) (local.get $cm2))
    (f64.store offset=40 (local.get $st) (f64.add (f64.load offset=40 (local.get $st)) (local.get $sAbs)))
    (f64.store offset=48 (local.get $st) (f64.add (f64.load offset=48 (local.get $st)) (local.get $sSq)))
    (f64.store offset=56 (local.get $st) (local.get $f16Sq))
    (f64.store offset=64 (local.get $st) (f64.max (f64.load offset=64 (local.get $st))
      (f64.promote_f32 (f32.reinterpret_i32 (i32x4.extract_lane 0 (call $hmax (local.get $f16max)))))))
    (f64.store offset=80 (local.get $st) (local.get $i8Sq))
    (f64.store offset=88 (local.get $st) (f64.max (f64.load offset=88 (local.get $st))
      (f64.max (f64x2.extract_lane 0 (local.get $i8max)) (f64x2.extract_lane 1 (local.get $i8max)))))
    (f64.store offset=112 (local.get $st)
      (f64.add (f64.load offset=112 (local.get $st)) (f64.convert_i32_u (local.get $nonFinite))))
    (f64.store offset=120 (local.get $st)
      (f64.add (f64.load offset=120 (local.get $st)) (f64.convert_i32_u (local.get $zeroRows))))
    (f64.store offset=152 (local.get $st)
      (f64.add (f64.load offset=152 (local.get $st)) (f64.convert_i32_u (local.get $errRows))))
    (f64.store offset=160 (local.get $st)
      (f64.add (f64.load offset=160 (local.get $st)) (f64.convert_i32_u (local.get $errN))))
    (f64.store offset=168 (local.get $st) (f64.add (f64.load offset=168 (local.get $st)) (local.get $errSq)))
    (i32.store (i32.const 0) (i32.sub (i32.load (i32.const 0)) (local.get $nonFinite)))
    (i32.store (local.get $counts) (i32.add (i32.load (local.get $counts))
      (i32.sub
        (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $zc)) (i32x4.extract_lane 1 (local.get $zc)))
          (i32.add (i32x4.extract_lane 2 (local.get $zc)) (i32x4.extract_lane 3 (local.get $zc))))
        (local.get $nonFinite))))
    ;; near zeros: the values not above epsilon
    (i32.store offset=4 (local.get $counts) (i32.add (i32.load offset=4 (local.get $counts))
      (i32.sub
        (i32.sub (i32.mul (local.get $nRows) (local.get $d))
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $nc)) (i32x4.extract_lane 1 (local.get $nc)))
            (i32.add (i32x4.extract_lane 2 (local.get $nc)) (i32x4.extract_lane 3 (local.get $nc)))))
        (local.get $nonFinite))))
    (i32.store offset=8 (local.get $counts) (i32.add (i32.load offset=8 (local.get $counts))
      (i32.add
        (i32.add (i32x4.extract_lane 0 (local.get $oc)) (i32x4.extract_lane 1 (local.get $oc)))
        (i32.add (i32x4.extract_lane 2 (local.get $oc)) (i32x4.extract_lane 3 (local.get $oc)))))))

  ;; lane 0 of the result: the signed max of the 4 lanes
  (func $hmax (param $x v128) (result v128)
    (local.set $x (i32x4.max_s (local.get $x) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))
    (i32x4.max_s (local.get $x) (i8x16.shuffle 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 (local.get $x) (local.get $x))))
  ;; the float of the smallest / largest of 4 extreme keys
  (func $keyMin (param $x v128) (result f32) (local $k i32)
    (local.set $x (i32x4.min_s (local.get $x) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))
    (local.set $k (i32x4.extract_lane 0
      (i32x4.min_s (local.get $x) (i8x16.shuffle 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 (local.get $x) (local.get $x)))))
    (f32.reinterpret_i32 (i32.xor (local.get $k) (i32.and (i32.shr_s (local.get $k) (i32.const 31)) (i32.const 0x7fffffff)))))
  (func $keyMax (param $x v128) (result f32) (local $k i32)
    (local.set $k (i32x4.extract_lane 0 (call $hmax (local.get $x))))
    (f32.reinterpret_i32 (i32.xor (local.get $k) (i32.and (i32.shr_s (local.get $k) (i32.const 31)) (i32.const 0x7fffffff)))))

;; ---- exact selection (magnitude-select.ts), on a private instance of this module
  ;; hist16(p, n, hist) counts the |bits| >>> 16 of n float32 at p into 4 histograms of 32768 i32
  ;; bins at hist (131072 bytes apart, element i into the (i mod 4)-th: neighbours often share a
  ;; bin, and one histogram would chain their increments through memory); NaNs are not counted
  ;; but returned.
  (func (export "hist16") (param $p i32) (param $n i32) (param $hist i32) (result i32)
    (local $end i32) (local $a i32) (local $nan i32) (local $lane i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (i32.and (i32.load (local.get $p)) (i32.const 0x7fffffff)))
        (if (i32.gt_u (local.get $a) (i32.const 0x7f800000))
          (then (local.set $nan (i32.add (local.get $nan) (i32.const 1))))
          (else
            (local.set $a (i32.add (i32.add (local.get $hist) (local.get $lane))
              (i32.shl (i32.shr_u (local.get $a) (i32.const 16)) (i32.const 2))))
            (i32.store (local.get $a) (i32.add (i32.load (local.get $a)) (i32.const 1)))))
        (local.set $lane (i32.and (i32.add (local.get $lane) (i32.const 131072)) (i32.const 524287)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $each)))
    (local.get $nan))

  ;; low16(p, n, slot, low): for each non-NaN float32 at p whose |bits| >>> 16 has slot[that]
  ;; >= 0 (i32[32768] at slot: a byte offset into low), counts its low 16 bits into the 65536 i32
  ;; bins at low + that offset
  (func (export "low16") (param $p i32) (param $n i32) (param $slot i32) (param $low i32)
    (local $end i32) (local $a i32) (local $s i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a (i32.and (i32.load (local.get $p)) (i32.const 0x7fffffff)))
        (local.set $s (i32.load (i32.add (local.get $slot)
          (i32.shl (i32.shr_u (local.get $a) (i32.const 16)) (i32.const 2)))))
        (if (i32.and (i32.ge_s (local.get $s) (i32.const 0)) (i32.le_u (local.get $a) (i32.const 0x7f800000)))
          (then
            (local.set $s (i32.add (i32.add (local.get $low) (local.get $s))
              (i32.shl (i32.and (local.get $a) (i32.const 0xffff)) (i32.const 2))))
            (i32.store (local.get $s) (i32.add (i32.load (local.get $s)) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $each))))

  ;; sum4(hist): the 4 histograms of hist16 added into the first
  (func (export "sum4") (param $h i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $h) (i32.const 131072)))
    (loop $each
      (v128.store (local.get $h)
        (i32x4.add
          (i32x4.add (v128.load (local.get $h)) (v128.load offset=131072 (local.get $h)))
          (i32x4.add (v128.load offset=262144 (local.get $h)) (v128.load offset=393216 (local.get $h)))))
      (local.set $h (i32.add (local.get $h) (i32.const 16)))
      (br_if $each (i32.lt_u (local.get $h) (local.get $end)))))

  ;; locate(h, nb, k, out): the bin of rank k (1-based) in the nb i32 counts at h, i.e. the
  ;; smallest b with h[0] + .. + h[b] >= k; stores k minus the counts before it (the rank inside
  ;; the bin) at out; -1 when the counts sum to less than k
  (func (export "locate") (param $h i32) (param $nb i32) (param $k i32) (param $out i32) (result i32)
    (local $b i32) (local $c i32)
    (block $none
      (loop $each
        (br_if $none (i32.ge_u (local.get $b) (local.get $nb)))
        (local.set $c (i32.load (i32.add (local.get $h) (i32.shl (local.get $b) (i32.const 2)))))
        (if (i32.le_s (local.get $k) (local.get $c))
          (then
            (i32.store (local.get $out) (local.get $k))
            (return (local.get $b))))
        (local.set $k (i32.sub (local.get $k) (local.get $c)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $each)))
    (i32.const -1))

  ;; ---- eigenvalues of a symmetric matrix (linalg.ts symmetricEigenvaluesOnly), on the private
  ;; instance: tred2's Householder reduction (EISPACK / JAMA) without accumulating the
  ;; transformation, then tql2 without eigenvectors: the same float64 operations in the same
  ;; order as the JS, and Math.hypot as V8 computes it, so the same bits. (The JS ran mostly
  ;; interpreted on its first calls: 20-40 ms of CPU per 64 x 64 matrix in a one-shot run.)

  ;; Math.hypot(a, b) as V8 computes it: both scaled by the larger, the squares summed (its Kahan
  ;; compensation is 0 for two values), the root scaled back
  (func $hypot (param $a f64) (param $b f64) (result f64)
    (local $m f64) (local $x f64) (local $y f64)
    (local.set $a (f64.abs (local.get $a)))
    (local.set $b (f64.abs (local.get $b)))
    (if (i32.or (f64.eq (local.get $a) (f64.const inf)) (f64.eq (local.get $b) (f64.const inf)))
      (then (return (f64.const inf))))
    (if (i32.or (f64.ne (local.get $a) (local.get $a)) (f64.ne (local.get $b) (local.get $b)))
      (then (return (f64.const nan))))
    (local.set $m (f64.max (local.get $a) (local.get $b)))
    (if (f64.eq (local.get $m) (f64.const 0)) (then (return (f64.const 0))))
    (local.set $x (f64.div (local.get $a) (local.get $m)))
    (local.set $y (f64.div (local.get $b) (local.get $m)))
    (f64.mul
      (f64.sqrt (f64.add (f64.mul (local.get $x) (local.get $x)) (f64.mul (local.get $y) (local.get $y))))
      (local.get $m)))

  ;; tridiag(V, d, e, n): the n x n float64 matrix V (row-major) reduced in place; d and e
  ;; (f64[n]) receive the diagonal and off-diagonal (e[0] = 0) that tred2 hands to tql2.
  ;; Pointer names: p* walk V, q* walk d, r* walk e (byte addresses).
  (func (export "tridiag") (param $V i32) (param $d i32) (param $e i32) (param $n i32)
    (local $i i32) (local $j i32) (local $rowI i32) (local $rowI1 i32) (local $n8 i32)
    (local $p i32) (local $q i32) (local $r i32) (local $end i32) (local $qj i32) (local $rj i32) (local $qi i32)
    (local $scale f64) (local $h f64) (local $f f64) (local $g f64) (local $hh f64) (local $x f64)
    (local.set $n8 (i32.shl (local.get $n) (i32.const 3)))
    ;; d = the last row
    (local.set $p (i32.add (local.get $V) (i32.mul (i32.sub (local.get $n) (i32.const 1)) (local.get $n8))))
    (local.set $q (local.get $d))
    (local.set $end (i32.add (local.get $d) (local.get $n8)))
    (loop $l0
      (f64.store (local.get $q) (f64.load (local.get $p)))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (local.set $q (i32.add (local.get $q) (i32.const 8)))
      (br_if $l0 (i32.lt_u (local.get $q) (local.get $end))))
    (local.set $i (i32.sub (local.get $n) (i32.const 1)))
    (block $bi (loop $li
      (br_if $bi (i32.le_s (local.get $i) (i32.const 0)))
      (local.set $rowI (i32.add (local.get $V) (i32.mul (local.get $i) (local.get $n8))))
      (local.set $rowI1 (i32.sub (local.get $rowI) (local.get $n8)))
      ;; d + 8i, e + 8i: ends of the loops over j < i
      (local.set $qi (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 3))))
      (local.set $scale (f64.const 0))
      (local.set $h (f64.const 0))
      (local.set $q (local.get $d))
      (loop $l1
        (local.set $scale (f64.add (local.get $scale) (f64.abs (f64.load (local.get $q)))))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br_if $l1 (i32.lt_u (local.get $q) (local.get $qi))))
      (if (f64.eq (local.get $scale) (f64.const 0))
        (then
          (f64.store (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 3))) (f64.load offset=0 (i32.sub (local.get $qi) (i32.const 8))))
          ;; d[j] = V[i-1][j]; V[i][j] = 0; V[j][i] = 0
          (local.set $j (i32.const 0))
          (local.set $p (i32.add (local.get $V) (i32.shl (local.get $i) (i32.const 3))))
          (loop $l2
            (f64.store (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 3)))
              (f64.load (i32.add (local.get $rowI1) (i32.shl (local.get $j) (i32.const 3)))))
            (f64.store (i32.add (local.get $rowI) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
            (f64.store (local.get $p) (f64.const 0))
            (local.set $p (i32.add (local.get $p) (local.get $n8)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $l2 (i32.lt_s (local.get $j) (local.get $i)))))
        (else
          (local.set $q (local.get $d))
          (loop $l3
            (local.set $x (f64.div (f64.load (local.get $q)) (local.get $scale)))
            (f64.store (local.get $q) (local.get $x))
            (local.set $h (f64.add (local.get $h) (f64.mul (local.get $x) (local.get $x))))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (br_if $l3 (i32.lt_u (local.get $q) (local.get $qi))))
          (local.set $f (f64.load (i32.sub (local.get $qi) (i32.const 8))))
          (local.set $g (f64.sqrt (local.get $h)))
          (if (f64.gt (local.get $f) (f64.const 0)) (then (local.set $g (f64.neg (local.get $g)))))
          (f64.store (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 3))) (f64.mul (local.get $scale) (local.get $g)))
          (local.set $h (f64.sub (local.get $h) (f64.mul (local.get $f) (local.get $g))))
          (f64.store (i32.sub (local.get $qi) (i32.const 8)) (f64.sub (local.get $f) (local.get $g)))
          (local.set $r (local.get $e))
          (local.set $end (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 3))))
          (loop $l4
            (f64.store (local.get $r) (f64.const 0))
            (local.set $r (i32.add (local.get $r) (i32.const 8)))
            (br_if $l4 (i32.lt_u (local.get $r) (local.get $end))))
          ;; for j < i: f = d[j]; V[j][i] = f; g = e[j] + V[j][j] f;
          ;;   for k in j+1 .. i-1: g += V[k][j] d[k]; e[k] += V[k][j] f;  e[j] = g
          (local.set $j (i32.const 0))
          (loop $l5
            (local.set $qj (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 3))))
            (local.set $rj (i32.add (local.get $e) (i32.shl (local.get $j) (i32.const 3))))
            (local.set $f (f64.load (local.get $qj)))
            ;; p = &V[j][j]
            (local.set $p (i32.add (local.get $V) (i32.add (i32.mul (local.get $j) (local.get $n8)) (i32.shl (local.get $j) (i32.const 3)))))
            (f64.store (i32.add (local.get $p) (i32.shl (i32.sub (local.get $i) (local.get $j)) (i32.const 3))) (local.get $f))
            (local.set $g (f64.add (f64.load (local.get $rj)) (f64.mul (f64.load (local.get $p)) (local.get $f))))
            (local.set $p (i32.add (local.get $p) (local.get $n8)))
            (local.set $q (i32.add (local.get $qj) (i32.const 8)))
            (local.set $r (i32.add (local.get $rj) (i32.const 8)))
            (block $b6 (loop $l6
              (br_if $b6 (i32.ge_u (local.get $q) (local.get $qi)))
              (local.set $x (f64.load (local.get $p)))
              (local.set $g (f64.add (local.get $g) (f64.mul (local.get $x) (f64.load (local.get $q)))))
              (f64.store (local.get $r) (f64.add (f64.load (local.get $r)) (f64.mul (local.get $x) (local.get $f))))
              (local.set $p (i32.add (local.get $p) (local.get $n8)))
              (local.set $q (i32.add (local.get $q) (i32.const 8)))
              (local.set $r (i32.add (local.get $r) (i32.const 8)))
              (br $l6)))
            (f64.store (local.get $rj) (local.get $g))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $l5 (i32.lt_s (local.get $j) (local.get $i))))
          (local.set $f (f64.const 0))
          (local.set $q (local.get $d))
          (local.set $r (local.get $e))
          (loop $l7
            (local.set $x (f64.div (f64.load (local.get $r)) (local.get $h)))
            (f64.store (local.get $r) (local.get $x))
            (local.set $f (f64.add (local.get $f) (f64.mul (local.get $x) (f64.load (local.get $q)))))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (local.set $r (i32.add (local.get $r) (i32.const 8)))
            (br_if $l7 (i32.lt_u (local.get $q) (local.get $qi))))
          (local.set $hh (f64.div (local.get $f) (f64.add (local.get $h) (local.get $h))))
          (local.set $q (local.get $d))
          (local.set $r (local.get $e))
          (loop $l8
            (f64.store (local.get $r) (f64.sub (f64.load (local.get $r)) (f64.mul (local.get $hh) (f64.load (local.get $q)))))
            (local.set $q (i32.add (local.get $q) (i32.const 8)))
            (local.set $r (i32.add (local.get $r) (i32.const 8)))
            (br_if $l8 (i32.lt_u (local.get $q) (local.get $qi))))
          ;; for j < i: f = d[j]; g = e[j]; for k in j .. i-1: V[k][j] -= f e[k] + g d[k];
          ;;   d[j] = V[i-1][j]; V[i][j] = 0
          (local.set $j (i32.const 0))
          (loop $l9
            (local.set $qj (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 3))))
            (local.set $rj (i32.add (local.get $e) (i32.shl (local.get $j) (i32.const 3))))
            (local.set $f (f64.load (local.get $qj)))
            (local.set $g (f64.load (local.get $rj)))
            (local.set $p (i32.add (local.get $V) (i32.add (i32.mul (local.get $j) (local.get $n8)) (i32.shl (local.get $j) (i32.const 3)))))
            (local.set $q (local.get $qj))
            (local.set $r (local.get $rj))
            (loop $l10
              (f64.store (local.get $p) (f64.sub (f64.load (local.get $p))
                (f64.add (f64.mul (local.get $f) (f64.load (local.get $r))) (f64.mul (local.get $g) (f64.load (local.get $q))))))
              (local.set $p (i32.add (local.get $p) (local.get $n8)))
              (local.set $q (i32.add (local.get $q) (i32.const 8)))
              (local.set $r (i32.add (local.get $r) (i32.const 8)))
              (br_if $l10 (i32.lt_u (local.get $q) (local.get $qi))))
            (f64.store (local.get $qj) (f64.load (i32.add (local.get $rowI1) (i32.shl (local.get $j) (i32.const 3)))))
            (f64.store (i32.add (local.get $rowI) (i32.shl (local.get $j) (i32.const 3))) (f64.const 0))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $l9 (i32.lt_s (local.get $j) (local.get $i))))))
      (f64.store (local.get $qi) (local.get $h))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br $li)))
    ;; the diagonal tred2 leaves for tql2 (its accumulation of the transformation keeps it in
    ;; V's last row and never changes it), and e[0] = 0
    (local.set $j (i32.const 0))
    (loop $l11
      (f64.store (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 3)))
        (f64.load (i32.add (local.get $V) (i32.add (i32.mul (local.get $j) (local.get $n8)) (i32.shl (local.get $j) (i32.const 3))))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $l11 (i32.lt_s (local.get $j) (local.get $n))))
    (f64.store (local.get $e) (f64.const 0)))

  ;; ql(d, e, n): tql2 without eigenvectors on the tridiagonal (d, e); d receives the
  ;; eigenvalues (unsorted), e is destroyed
  (func (export "ql") (param $d i32) (param $e i32) (param $n i32)
    (local $i i32) (local $l i32) (local $m i32) (local $iter i32)
    (local $f f64) (local $tst1 f64) (local $g f64) (local $p f64) (local $r f64) (local $h f64)
    (local $c f64) (local $c2 f64) (local $c3 f64) (local $s f64) (local $s2 f64) (local $el1 f64) (local $dl1 f64)
    (local $ei f64) (local $di f64)
    ;; e[i - 1] = e[i]; e[n - 1] = 0
    (local.set $i (i32.const 1))
    (block $b0 (loop $l0
      (br_if $b0 (i32.ge_s (local.get $i) (local.get $n)))
      (f64.store (i32.add (local.get $e) (i32.shl (i32.sub (local.get $i) (i32.const 1)) (i32.const 3)))
        (f64.load (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l0)))
    (f64.store (i32.add (local.get $e) (i32.shl (i32.sub (local.get $n) (i32.const 1)) (i32.const 3))) (f64.const 0))
    (local.set $l (i32.const 0))
    (block $bl (loop $ll
      (br_if $bl (i32.ge_s (local.get $l) (local.get $n)))
      (local.set $tst1 (f64.max (local.get $tst1)
        (f64.add (f64.abs (f64.load (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3)))))
          (f64.abs (f64.load (i32.add (local.get $e) (i32.shl (local.get $l) (i32.const 3))))))))
      (local.set $m (local.get $l))
      (block $bm (loop $lm
        (br_if $bm (i32.ge_s (local.get $m) (i32.sub (local.get $n) (i32.const 1))))
        (br_if $bm (i32.eqz (f64.gt (f64.abs (f64.load (i32.add (local.get $e) (i32.shl (local.get $m) (i32.const 3)))))
          (f64.mul (f64.const 0x1p-52) (local.get $tst1)))))
        (local.set $m (i32.add (local.get $m) (i32.const 1)))
        (br $lm)))
      (if (i32.gt_s (local.get $m) (local.get $l))
        (then
          (local.set $iter (i32.const 0))
          (block $bit (loop $lit
            (br_if $bit (i32.ge_s (local.get $iter) (i32.const 100)))
            (local.set $g (f64.load (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3)))))
            (local.set $ei (f64.load (i32.add (local.get $e) (i32.shl (local.get $l) (i32.const 3)))))
            (local.set $p (f64.div
              (f64.sub (f64.load offset=8 (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3)))) (local.get $g))
              (f64.mul (f64.const 2) (local.get $ei))))
            (local.set $r (call $hypot (local.get $p) (f64.const 1)))
            (if (f64.lt (local.get $p) (f64.const 0)) (then (local.set $r (f64.neg (local.get $r)))))
            (f64.store (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3)))
              (f64.div (local.get $ei) (f64.add (local.get $p) (local.get $r))))
            (local.set $dl1 (f64.mul (local.get $ei) (f64.add (local.get $p) (local.get $r))))
            (f64.store offset=8 (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3))) (local.get $dl1))
            (local.set $h (f64.sub (local.get $g) (f64.load (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3))))))
            (local.set $i (i32.add (local.get $l) (i32.const 2)))
            (block $b1 (loop $l1
              (br_if $b1 (i32.ge_s (local.get $i) (local.get $n)))
              (f64.store (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 3)))
                (f64.sub (f64.load (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 3)))) (local.get $h)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l1)))
            (local.set $f (f64.add (local.get $f) (local.get $h)))
            (local.set $p (f64.load (i32.add (local.get $d) (i32.shl (local.get $m) (i32.const 3)))))
            (local.set $c (f64.const 1))
            (local.set $c2 (local.get $c))
            (local.set $c3 (local.get $c))
            (local.set $el1 (f64.load offset=8 (i32.add (local.get $e) (i32.shl (local.get $l) (i32.const 3)))))
            (local.set $s (f64.const 0))
            (local.set $s2 (f64.const 0))
            (local.set $i (i32.sub (local.get $m) (i32.const 1)))
            (block $b2 (loop $l2
              (br_if $b2 (i32.lt_s (local.get $i) (local.get $l)))
              (local.set $c3 (local.get $c2))
              (local.set $c2 (local.get $c))
              (local.set $s2 (local.get $s))
              (local.set $ei (f64.load (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 3)))))
              (local.set $di (f64.load (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 3)))))
              (local.set $g (f64.mul (local.get $c) (local.get $ei)))
              (local.set $h (f64.mul (local.get $c) (local.get $p)))
              (local.set $r (call $hypot (local.get $p) (local.get $ei)))
              (f64.store offset=8 (i32.add (local.get $e) (i32.shl (local.get $i) (i32.const 3))) (f64.mul (local.get $s) (local.get $r)))
              (local.set $s (f64.div (local.get $ei) (local.get $r)))
              (local.set $c (f64.div (local.get $p) (local.get $r)))
              (local.set $p (f64.sub (f64.mul (local.get $c) (local.get $di)) (f64.mul (local.get $s) (local.get $g))))
              (f64.store offset=8 (i32.add (local.get $d) (i32.shl (local.get $i) (i32.const 3)))
                (f64.add (local.get $h)
                  (f64.mul (local.get $s) (f64.add (f64.mul (local.get $c) (local.get $g)) (f64.mul (local.get $s) (local.get $di))))))
              (local.set $i (i32.sub (local.get $i) (i32.const 1)))
              (br $l2)))
            (local.set $ei (f64.load (i32.add (local.get $e) (i32.shl (local.get $l) (i32.const 3)))))
            (local.set $p (f64.div
              (f64.mul (f64.mul (f64.mul (f64.mul (f64.neg (local.get $s)) (local.get $s2)) (local.get $c3)) (local.get $el1)) (local.get $ei))
              (local.get $dl1)))
            (f64.store (i32.add (local.get $e) (i32.shl (local.get $l) (i32.const 3))) (f64.mul (local.get $s) (local.get $p)))
            (f64.store (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3))) (f64.mul (local.get $c) (local.get $p)))
            (br_if $bit (i32.eqz (f64.gt (f64.abs (f64.mul (local.get $s) (local.get $p))) (f64.mul (f64.const 0x1p-52) (local.get $tst1)))))
            (local.set $iter (i32.add (local.get $iter) (i32.const 1)))
            (br $lit)))))
      (f64.store (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3)))
        (f64.add (f64.load (i32.add (local.get $d) (i32.shl (local.get $l) (i32.const 3)))) (local.get $f)))
      (f64.store (i32.add (local.get $e) (i32.shl (local.get $l) (i32.const 3))) (f64.const 0))
      (local.set $l (i32.add (local.get $l) (i32.const 1)))
      (br $ll))))

  ;; heat(p, n, per, thr, out): n float32 row norms at p, in buckets of `per` (the last one may
  ;; be shorter): each bucket's float64 sum, added in order, at out[b]; returns how many are <= thr
  ;; (tensor-report.ts summarizeRows, on the private instance)
  (func (export "heat") (param $p i32) (param $n i32) (param $per i32) (param $thr f64) (param $out i32) (result i32)
    (local $end i32) (local $bEnd i32) (local $near i32) (local $x f64) (local $s f64)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $buckets
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $bEnd (i32.add (local.get $p) (i32.shl (local.get $per) (i32.const 2))))
        (if (i32.gt_u (local.get $bEnd) (local.get $end)) (then (local.set $bEnd (local.get $end))))
        (local.set $s (f64.const 0))
        (loop $each
          (local.set $x (f64.promote_f32 (f32.load (local.get $p))))
          (local.set $s (f64.add (local.get $s) (local.get $x)))
          (local.set $near (i32.add (local.get $near) (f64.le (local.get $x) (local.get $thr))))
          (local.set $p (i32.add (local.get $p) (i32.const 4)))
          (br_if $each (i32.lt_u (local.get $p) (local.get $bEnd))))
        (f64.store (local.get $out) (local.get $s))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (br $buckets)))
    (local.get $near))

  (func (export "gram") (param $row i32) (param $d i32) (param $g i32) (param $x i32) (result i32)
    (local $j i32) (local $p i32) (local $q i32) (local $gp i32) (local $end i32) (local $xp f64) (local $xpv v128)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 3))))
    ;; a broken row says nothing of the spectrum; the others promoted to float64
    (block $ok
      (loop $check
        (br_if $ok (i32.ge_u (local.get $j) (local.get $d)))
        (if (i32.ge_u (i32.and (i32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))) (i32.const 0x7fffffff))
              (i32.const 0x7f800000))
          (then (return (i32.const 0))))
        (f64.store (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 3)))
          (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $check)))
    (block $done
      (loop $ps
        (br_if $done (i32.ge_u (local.get $p) (local.get $d)))
        (local.set $xp (f64.load (i32.add (local.get $x) (i32.shl (local.get $p) (i32.const 3)))))
        (if (f64.ne (local.get $xp) (f64.const 0))
          (then
            (local.set $xpv (f64x2.splat (local.get $xp)))
            ;; from the even column at or below the diagonal (d is even)
            (local.set $q (i32.and (local.get $p) (i32.const -2)))
            (local.set $gp (i32.add (local.get $g)
              (i32.shl (i32.add (i32.mul (local.get $p) (local.get $d)) (local.get $q)) (i32.const 3))))
            (local.set $q (i32.add (local.get $x) (i32.shl (local.get $q) (i32.const 3))))
            (loop $qs
              (v128.store (local.get $gp)
                (f64x2.add (v128.load (local.get $gp)) (f64x2.mul (local.get $xpv) (v128.load (local.get $q)))))
              (local.set $gp (i32.add (local.get $gp) (i32.const 16)))
              (local.set $q (i32.add (local.get $q) (i32.const 16)))
              (br_if $qs (i32.lt_u (local.get $q) (local.get $end))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $ps)))
    (i32.const 1)))
