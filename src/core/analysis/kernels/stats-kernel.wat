;; The exact per-element figures of the fused statistics pass (tensor-stats.ts), 4 float32 lanes
;; at a time with WebAssembly SIMD. Built into stats-kernel-wasm.ts by scripts/build-kernels.mjs.
;;
;; stats(data, nRows, d, hist, counts, colAbs, colZeros, rowOut, epsBits) walks nRows rows of d
;; float32 values (d a multiple of 4) at `data` and
;;  - adds to counts[0..2] (i32) the exact zeros, |w| <= epsilon (by bits) and |w| >= 65520
;;    (the values float16 rounds to Infinity);
;;  - counts |w| bits >>> 21 into 4 histograms of 1024 i32 bins at `hist`, one per lane (4096
;;    bytes apart): neighbours often share a bin, and one histogram would chain their
;;    increments through memory;
;;  - adds |w| per column into colAbs (f64[d]) and exact zeros per column into colZeros (i32[d]);
;;  - writes one 40-byte record per row at rowOut: f64 sum, f64 sum of squares, f64 sum of |w|,
;;    f32 min, f32 max, i32 non-finite count.
;; NaN / Infinity lanes are replaced by +0 before anything else, so the caller, seeing a row's
;; non-finite count, takes them back out of the zero figures and recomputes that row's min/max
;; (such rows do not occur in sane weights). Sums are float64 (x * x of a float32 is exact).
(module
  (memory (export "memory") 1)
  (func (export "stats")
    (param $data i32) (param $nRows i32) (param $d i32) (param $hist i32) (param $counts i32)
    (param $colAbs i32) (param $colZeros i32) (param $out i32) (param $eps i32)
    (local $r i32) (local $p i32) (local $rowEnd i32) (local $ca i32) (local $cz i32)
    (local $h i32)
    (local $v v128) (local $a v128) (local $m v128) (local $epsV v128)
    (local $zc v128) (local $nc v128) (local $oc v128) (local $badc v128)
    (local $rsum v128) (local $rsq v128) (local $rabs v128) (local $rmin v128) (local $rmax v128)
    (local $xl v128) (local $xh v128) (local $al v128) (local $ah v128)
    (local.set $epsV (i32x4.splat (local.get $eps)))
    (local.set $p (local.get $data))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $nRows)))
        (local.set $rsum (v128.const i64x2 0 0))
        (local.set $rsq (v128.const i64x2 0 0))
        (local.set $rabs (v128.const i64x2 0 0))
        (local.set $badc (v128.const i64x2 0 0))
        (local.set $rmin (v128.const f32x4 inf inf inf inf))
        (local.set $rmax (v128.const f32x4 -inf -inf -inf -inf))
        (local.set $ca (local.get $colAbs))
        (local.set $cz (local.get $colZeros))
        (local.set $rowEnd (i32.add (local.get $p) (i32.shl (local.get $d) (i32.const 2))))
        (loop $cols
          (local.set $v (v128.load (local.get $p)))
          (local.set $a (v128.and (local.get $v) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
          ;; non-finite lanes (|bits| >= Infinity's) counted, then made +0
          (local.set $m (i32x4.ge_u (local.get $a) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
          (local.set $badc (i32x4.sub (local.get $badc) (local.get $m)))
          (local.set $v (v128.andnot (local.get $v) (local.get $m)))
          (local.set $a (v128.andnot (local.get $a) (local.get $m)))
          ;; zeros (total and per column), near zeros, float16 overflow
          (local.set $m (i32x4.eq (local.get $a) (v128.const i64x2 0 0)))
          (local.set $zc (i32x4.sub (local.get $zc) (local.get $m)))
          (v128.store (local.get $cz) (i32x4.sub (v128.load (local.get $cz)) (local.get $m)))
          (local.set $nc (i32x4.sub (local.get $nc) (i32x4.le_u (local.get $a) (local.get $epsV))))
          (local.set $oc (i32x4.sub (local.get $oc)
            (i32x4.ge_u (local.get $a) (v128.const i32x4 0x477ff000 0x477ff000 0x477ff000 0x477ff000))))
          ;; histogram: lane k counts into the k-th histogram
          (local.set $h (i32.add (local.get $hist)
            (i32.shl (i32.shr_u (i32x4.extract_lane 0 (local.get $a)) (i32.const 21)) (i32.const 2))))
          (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
          (local.set $h (i32.add (local.get $hist)
            (i32.shl (i32.shr_u (i32x4.extract_lane 1 (local.get $a)) (i32.const 21)) (i32.const 2))))
          (i32.store offset=4096 (local.get $h) (i32.add (i32.load offset=4096 (local.get $h)) (i32.const 1)))
          (local.set $h (i32.add (local.get $hist)
            (i32.shl (i32.shr_u (i32x4.extract_lane 2 (local.get $a)) (i32.const 21)) (i32.const 2))))
          (i32.store offset=8192 (local.get $h) (i32.add (i32.load offset=8192 (local.get $h)) (i32.const 1)))
          (local.set $h (i32.add (local.get $hist)
            (i32.shl (i32.shr_u (i32x4.extract_lane 3 (local.get $a)) (i32.const 21)) (i32.const 2))))
          (i32.store offset=12288 (local.get $h) (i32.add (i32.load offset=12288 (local.get $h)) (i32.const 1)))
          ;; extremes (no NaN left; min(-0, +0) = -0 as Math.min has it)
          (local.set $rmin (f32x4.min (local.get $rmin) (local.get $v)))
          (local.set $rmax (f32x4.max (local.get $rmax) (local.get $v)))
          ;; float64 sums: lanes 0-1 and 2-3
          (local.set $xl (f64x2.promote_low_f32x4 (local.get $v)))
          (local.set $xh (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
          (local.set $al (f64x2.abs (local.get $xl)))
          (local.set $ah (f64x2.abs (local.get $xh)))
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
        (f64.store (local.get $out)
          (f64.add (f64x2.extract_lane 0 (local.get $rsum)) (f64x2.extract_lane 1 (local.get $rsum))))
        (f64.store offset=8 (local.get $out)
          (f64.add (f64x2.extract_lane 0 (local.get $rsq)) (f64x2.extract_lane 1 (local.get $rsq))))
        (f64.store offset=16 (local.get $out)
          (f64.add (f64x2.extract_lane 0 (local.get $rabs)) (f64x2.extract_lane 1 (local.get $rabs))))
        (f32.store offset=24 (local.get $out)
          (f32.min
            (f32.min (f32x4.extract_lane 0 (local.get $rmin)) (f32x4.extract_lane 1 (local.get $rmin)))
            (f32.min (f32x4.extract_lane 2 (local.get $rmin)) (f32x4.extract_lane 3 (local.get $rmin)))))
        (f32.store offset=28 (local.get $out)
          (f32.max
            (f32.max (f32x4.extract_lane 0 (local.get $rmax)) (f32x4.extract_lane 1 (local.get $rmax)))
            (f32.max (f32x4.extract_lane 2 (local.get $rmax)) (f32x4.extract_lane 3 (local.get $rmax)))))
        (i32.store offset=32 (local.get $out)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $badc)) (i32x4.extract_lane 1 (local.get $badc)))
            (i32.add (i32x4.extract_lane 2 (local.get $badc)) (i32x4.extract_lane 3 (local.get $badc)))))
        (local.set $out (i32.add (local.get $out) (i32.const 40)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))
    (i32.store (local.get $counts) (i32.add (i32.load (local.get $counts))
      (i32.add
        (i32.add (i32x4.extract_lane 0 (local.get $zc)) (i32x4.extract_lane 1 (local.get $zc)))
        (i32.add (i32x4.extract_lane 2 (local.get $zc)) (i32x4.extract_lane 3 (local.get $zc))))))
    (i32.store offset=4 (local.get $counts) (i32.add (i32.load offset=4 (local.get $counts))
      (i32.add
        (i32.add (i32x4.extract_lane 0 (local.get $nc)) (i32x4.extract_lane 1 (local.get $nc)))
        (i32.add (i32x4.extract_lane 2 (local.get $nc)) (i32x4.extract_lane 3 (local.get $nc))))))
    (i32.store offset=8 (local.get $counts) (i32.add (i32.load offset=8 (local.get $counts))
      (i32.add
        (i32.add (i32x4.extract_lane 0 (local.get $oc)) (i32x4.extract_lane 1 (local.get $oc)))
        (i32.add (i32x4.extract_lane 2 (local.get $oc)) (i32x4.extract_lane 3 (local.get $oc))))))))
