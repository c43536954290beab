;; Row-wise lazy Adam of sparse-tables.ts in WebAssembly SIMD, two float64 lanes at a time: the
;; same operations in the same order as the JS loop (float32 loads promoted to float64, m and v
;; rounded to float32 on store), so the results are bit-identical to it. Built into
;; adam-kernel-wasm.ts by scripts/build-kernels.mjs.
;;
;; adam(n, d, slots, g, slab, upd, lrc, ic2, b1, b2, eps): for k < n, the optimizer state of slot
;; slots[k] (i32) is the row pair m, v of d float32 each at slab + slots[k] * 8d; the gradient is
;; row k of g (float32, n x d). Writes m, v and, per element, the update
;;   upd[k * d + j] = (lrc * m) / (sqrt(v * ic2) + eps)        (float64, n x d)
;; that the caller subtracts from the table's row (w -= upd, rounded to float32 as in JS).
(module
  (memory (export "memory") 1)
  (func (export "adam") (param $n i32) (param $d i32) (param $slots i32) (param $g i32) (param $slab i32) (param $upd i32)
    (param $lrc f64) (param $ic2 f64) (param $b1 f64) (param $b2 f64) (param $eps f64)
    (local $k i32) (local $j i32) (local $d4 i32) (local $mo i32) (local $vo i32) (local $go i32) (local $uo i32)
    (local $B1 v128) (local $B2 v128) (local $NB1 v128) (local $NB2 v128) (local $LRC v128) (local $IC2 v128) (local $EPS v128)
    (local $g4 v128) (local $m4 v128) (local $v4 v128)
    (local $glo v128) (local $ghi v128) (local $mlo v128) (local $mhi v128) (local $vlo v128) (local $vhi v128)
    (local $gs f64) (local $ms f64) (local $vs f64) (local $nb1 f64) (local $nb2 f64)
    (local.set $nb1 (f64.sub (f64.const 1) (local.get $b1)))
    (local.set $nb2 (f64.sub (f64.const 1) (local.get $b2)))
    (local.set $B1 (f64x2.splat (local.get $b1)))
    (local.set $B2 (f64x2.splat (local.get $b2)))
    (local.set $NB1 (f64x2.splat (local.get $nb1)))
    (local.set $NB2 (f64x2.splat (local.get $nb2)))
    (local.set $LRC (f64x2.splat (local.get $lrc)))
    (local.set $IC2 (f64x2.splat (local.get $ic2)))
    (local.set $EPS (f64x2.splat (local.get $eps)))
    (local.set $d4 (i32.and (local.get $d) (i32.const -4)))
    (local.set $k (i32.const 0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $mo (i32.add (local.get $slab)
          (i32.mul (i32.load (i32.add (local.get $slots) (i32.shl (local.get $k) (i32.const 2)))) (i32.shl (local.get $d) (i32.const 3)))))
        (local.set $vo (i32.add (local.get $mo) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $go (i32.add (local.get $g) (i32.shl (i32.mul (local.get $k) (local.get $d)) (i32.const 2))))
        (local.set $uo (i32.add (local.get $upd) (i32.shl (i32.mul (local.get $k) (local.get $d)) (i32.const 3))))
        (local.set $j (i32.const 0))
        (block $vdone
          (loop $cols
            (br_if $vdone (i32.ge_u (local.get $j) (local.get $d4)))
            (local.set $g4 (v128.load (local.get $go)))
            (local.set $m4 (v128.load (local.get $mo)))
            (local.set $v4 (v128.load (local.get $vo)))
            (local.set $glo (f64x2.promote_low_f32x4 (local.get $g4)))
            (local.set $ghi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g4) (local.get $g4))))
            ;; m = b1 * m + (1 - b1) * g
            (local.set $mlo (f64x2.add (f64x2.mul (local.get $B1) (f64x2.promote_low_f32x4 (local.get $m4))) (f64x2.mul (local.get $NB1) (local.get $glo))))
            (local.set $mhi (f64x2.add (f64x2.mul (local.get $B1)
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $m4) (local.get $m4)))) (f64x2.mul (local.get $NB1) (local.get $ghi))))
            ;; v = b2 * v + (1 - b2) * g * g
            (local.set $vlo (f64x2.add (f64x2.mul (local.get $B2) (f64x2.promote_low_f32x4 (local.get $v4)))
              (f64x2.mul (f64x2.mul (local.get $NB2) (local.get $glo)) (local.get $glo))))
            (local.set $vhi (f64x2.add (f64x2.mul (local.get $B2)
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v4) (local.get $v4))))
              (f64x2.mul (f64x2.mul (local.get $NB2) (local.get $ghi)) (local.get $ghi))))
            (v128.store (local.get $mo) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (f32x4.demote_f64x2_zero (local.get $mlo)) (f32x4.demote_f64x2_zero (local.get $mhi))))
            (v128.store (local.get $vo) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
              (f32x4.demote_f64x2_zero (local.get $vlo)) (f32x4.demote_f64x2_zero (local.get $vhi))))
            ;; upd = (lrc * m) / (sqrt(v * ic2) + eps)
            (v128.store (local.get $uo) (f64x2.div (f64x2.mul (local.get $LRC) (local.get $mlo))
              (f64x2.add (f64x2.sqrt (f64x2.mul (local.get $vlo) (local.get $IC2))) (local.get $EPS))))
            (v128.store offset=16 (local.get $uo) (f64x2.div (f64x2.mul (local.get $LRC) (local.get $mhi))
              (f64x2.add (f64x2.sqrt (f64x2.mul (local.get $vhi) (local.get $IC2))) (local.get $EPS))))
            (local.set $go (i32.add (local.get $go) (i32.const 16)))
            (local.set $mo (i32.add (local.get $mo) (i32.const 16)))
            (local.set $vo (i32.add (local.get $vo) (i32.const 16)))
            (local.set $uo (i32.add (local.get $uo) (i32.const 32)))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $cols)))
        (block $sdone
          (loop $tail
            (br_if $sdone (i32.ge_u (local.get $j) (local.get $d)))
            (local.set $gs (f64.promote_f32 (f32.load (local.get $go))))
            (local.set $ms (f64.add (f64.mul (local.get $b1) (f64.promote_f32 (f32.load (local.get $mo)))) (f64.mul (local.get $nb1) (local.get $gs))))
            (local.set $vs (f64.add (f64.mul (local.get $b2) (f64.promote_f32 (f32.load (local.get $vo))))
              (f64.mul (f64.mul (local.get $nb2) (local.get $gs)) (local.get $gs))))
            (f32.store (local.get $mo) (f32.demote_f64 (local.get $ms)))
            (f32.store (local.get $vo) (f32.demote_f64 (local.get $vs)))
            (f64.store (local.get $uo) (f64.div (f64.mul (local.get $lrc) (local.get $ms))
              (f64.add (f64.sqrt (f64.mul (local.get $vs) (local.get $ic2))) (local.get $eps))))
            (local.set $go (i32.add (local.get $go) (i32.const 4)))
            (local.set $mo (i32.add (local.get $mo) (i32.const 4)))
            (local.set $vo (i32.add (local.get $vo) (i32.const 4)))
            (local.set $uo (i32.add (local.get $uo) (i32.const 8)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tail)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $rows)))))
