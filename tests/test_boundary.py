"""Boundary awareness ops, checked against an OpenCV + numpy reference and hand-made cases."""

import functools

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fashion_jax.ops import boundary as bd


def reference_maps(points, valid, size, sigma):
  """OpenCV reference for one landmark set on a size x size map: boundary, fill, blurred fill.

  Drawn on a canvas large enough for every point and the blur, so that neither `cv2.line`'s
  clipping nor a blur border rule comes into play, then cropped to the map.
  """
  radius = bd.blur_radius(sigma)
  snapped = np.floor(points[valid] + 0.5).astype(np.int32)  # the documented snapping rule
  offset = radius + max(0, -int(snapped.min(initial=0)))
  canvas = offset + max(size, int(snapped.max(initial=0)) + 1) + radius
  boundary = np.zeros((canvas, canvas), np.uint8)
  fill = np.zeros((canvas, canvas), np.float32)
  if len(snapped):
    hull = cv2.convexHull(snapped + offset)
    cv2.polylines(boundary, [hull], isClosed=True, color=1)
    cv2.fillPoly(fill, [hull], color=1.0)
  blurred = fill
  if radius:
    blurred = cv2.GaussianBlur(fill, (2 * radius + 1, 2 * radius + 1), sigma, sigmaY=sigma)
  crop = np.s_[offset:offset + size, offset:offset + size]
  # Scan-line fill of the reference boundary: each row from its leftmost to rightmost pixel.
  cols = np.arange(canvas)
  has_pixel = boundary.any(axis=1)
  left = np.where(has_pixel, np.argmax(boundary, axis=1), canvas)
  right = np.where(has_pixel, canvas - 1 - np.argmax(boundary[:, ::-1], axis=1), -1)
  scanline = (cols >= left[:, None]) & (cols <= right[:, None])
  return boundary[crop].astype(bool), fill[crop] > 0.5, scanline[crop], blurred[crop]


def random_landmark_sets(rng, num_sets, max_points, size):
  """Sets of 3..max_points points padded to max_points; a fifth of them reach beyond the map."""
  counts = rng.integers(3, max_points + 1, num_sets)
  valid = np.arange(max_points) < counts[:, None]
  spread = rng.uniform(0.1, 1.0, (num_sets, 1, 1)) * size
  centre = rng.uniform(0.2, 0.8, (num_sets, 1, 2)) * size
  points = centre + spread * rng.uniform(-0.5, 0.5, (num_sets, max_points, 2))
  outside = rng.random(num_sets) < 0.2
  points[outside] = rng.uniform(-0.25, 1.25, (outside.sum(), max_points, 2)) * size
  return points.astype(np.float32), valid


def test_agrees_with_opencv_on_1000_random_sets():
  size, sigma, num_sets, max_points = 56, 1.5, 1000, 24
  points, valid = random_landmark_sets(np.random.default_rng(0), num_sets, max_points, size)

  @jax.jit
  def ours(points, valid):
    return (bd.boundary_raster(points, valid, size, size),
            bd.scanline_fill(points, valid, size, size),
            bd.boundary_attention(points, valid, size, size, sigma))

  boundary, fill, attention = map(np.asarray, ours(points, valid))
  ious, boundary_errors, scanline_errors, blur_errors = [], [], [], []
  for i in range(num_sets):
    ref_boundary, ref_fill, ref_scanline, ref_blurred = reference_maps(
        points[i], valid[i], size, sigma)
    union = (fill[i] | ref_fill).sum()
    ious.append((fill[i] & ref_fill).sum() / union if union else 1.0)  # both empty: agreement
    boundary_errors.append((boundary[i] != ref_boundary).sum())
    scanline_errors.append((fill[i] != ref_scanline).sum())
    blur_errors.append(np.abs(attention[i] - ref_blurred).max())
  ious = np.asarray(ious)
  numbers = (f"fill IoU vs cv2.fillPoly: mean {ious.mean():.4f}, min {ious.min():.4f}; "
             f"boundary pixels differing from cv2.polylines: {sum(boundary_errors)}; "
             f"fill pixels differing from the scan-line fill of that boundary: "
             f"{sum(scanline_errors)}; max |blur - cv2.GaussianBlur|: {max(blur_errors):.2e}")
  assert ious.mean() >= 0.98 and ious.min() >= 0.9, numbers
  assert sum(boundary_errors) == 0 and sum(scanline_errors) == 0, numbers
  assert max(blur_errors) <= 1e-5, numbers


def test_bresenham_runs_match_cv2_line_inside_and_outside_the_map():
  rng = np.random.default_rng(1)
  size, margin = 16, 12
  ends = rng.integers(-margin, size + margin, (800, 2, 2)).astype(np.int32)
  lo, hi = jax.jit(bd.bresenham_row_runs)(ends[:, :1], ends[:, 1:], jnp.arange(size))
  lo, hi = np.asarray(lo)[:, 0], np.asarray(hi)[:, 0]  # [N, rows]
  cols = np.arange(size)
  ours = (cols >= lo[..., None]) & (cols <= hi[..., None])
  for (start, end), mask in zip(ends, ours, strict=True):
    canvas = np.zeros((size + 2 * margin,) * 2, np.uint8)
    cv2.line(canvas, tuple(start + margin), tuple(end + margin), color=1)
    np.testing.assert_array_equal(mask, canvas[margin:-margin, margin:-margin], err_msg=(
        f"line {start.tolist()} -> {end.tolist()}"))
  swapped = bd.bresenham_row_runs(ends[:, 1:], ends[:, :1], jnp.arange(size))
  np.testing.assert_array_equal(np.asarray(swapped[0])[:, 0], lo)  # endpoint order is irrelevant


def test_hull_edges_match_cv2_convex_hull_with_collinear_and_duplicate_points():
  rng = np.random.default_rng(2)
  # A 6x6 grid of candidate points makes collinear triples and duplicates common.
  points = rng.integers(0, 6, (300, 12, 2)).astype(np.int32)
  valid = rng.random((300, 12)) < 0.7
  end, has_edge = map(np.asarray, jax.jit(bd.hull_edges)(points, valid))
  for i in range(len(points)):
    ours = {frozenset({tuple(points[i, a]), tuple(points[i, end[i, a]])})
            for a in np.flatnonzero(has_edge[i])}
    unique = np.unique(points[i][valid[i]], axis=0)
    hull = [tuple(p) for p in cv2.convexHull(unique)[:, 0]] if len(unique) else []
    if len(hull) == 1:
      expected = {frozenset(hull)}  # a single point: the edge from it to itself
    else:
      expected = {frozenset({hull[k], hull[(k + 1) % len(hull)]}) for k in range(len(hull))}
    assert ours == expected, (points[i][valid[i]].tolist(), ours, expected)
    # One edge per hull vertex, none from duplicates or interior points.
    assert has_edge[i].sum() == len(hull), points[i][valid[i]]


@functools.partial(jax.jit, static_argnames=("size", "sigma"))
def _all_maps(points, valid, size, sigma):
  return (bd.boundary_raster(points, valid, size, size),
          bd.scanline_fill(points, valid, size, size),
          bd.boundary_attention(points, valid, size, size, sigma))


def _single(points, valid=None, size=12, sigma=0.0):
  """Boundary, fill and attention of one landmark set, as numpy arrays without the batch axis."""
  points = np.asarray(points, np.float32)[None]
  valid = np.ones(points.shape[:2], bool) if valid is None else np.asarray(valid)[None]
  return tuple(np.asarray(m)[0] for m in _all_maps(points, valid, size, sigma))


def _mask(size, pixels):
  mask = np.zeros((size, size), bool)
  for x, y in pixels:
    mask[y, x] = True
  return mask


def test_no_valid_point_gives_empty_maps():
  for points, valid in [([[3.0, 4.0], [5.0, 6.0]], [False, False]),
                        ([[np.nan, 4.0], [5.0, np.inf]], [True, True])]:
    boundary, fill, attention = _single(points, valid, sigma=1.0)
    assert not boundary.any() and not fill.any()
    assert np.all(attention == 0.0)


def test_one_point_is_one_pixel_and_the_blur_is_the_kernel():
  # The NaN point and the invalid point are ignored; 4.5 snaps up to 5.
  boundary, fill, attention = _single([[4.5, 6.2], [np.nan, 1.0], [9.0, 9.0]],
                                      [True, True, False], sigma=1.0)
  expected = _mask(12, [(5, 6)])
  np.testing.assert_array_equal(boundary, expected)
  np.testing.assert_array_equal(fill, expected)
  taps = bd.gaussian_kernel(1.0)  # 9 taps, centre at index 4
  np.testing.assert_allclose(attention[2:11, 1:10], np.outer(taps, taps), atol=1e-7)
  assert attention.sum() == pytest.approx(1.0, abs=1e-5)


def test_two_points_and_collinear_points_give_the_bresenham_segment():
  # Hand-traced cv2.line (1,1)->(5,3): the ties at x = 2 and x = 4 round toward the start.
  segment = _mask(12, [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3)])
  for points in ([[5, 3], [1, 1]],
                 [[1, 1], [3, 2], [5, 3], [3, 2], [1, 1]]):  # collinear, with duplicates
    boundary, fill, _ = _single(points)
    np.testing.assert_array_equal(boundary, segment, err_msg=str(points))
    np.testing.assert_array_equal(fill, segment, err_msg=str(points))
  end, has_edge = bd.hull_edges(jnp.array([[1, 1], [3, 2], [5, 3], [3, 2]], jnp.int32),
                                jnp.ones(4, bool))
  assert has_edge.tolist() == [True, False, True, False]  # only the extremes, both directions
  assert end[0] == 2 and end[2] == 0


def test_duplicates_and_interior_points_do_not_change_the_shape():
  triangle = [[1, 1], [9, 2], [4, 9]]
  reference = _single(triangle, sigma=1.0)
  for points in (triangle + [[9, 2], [1, 1]], triangle + [[4, 4], [5, 5]]):
    for ours, expected in zip(_single(points, sigma=1.0), reference, strict=True):
      np.testing.assert_array_equal(ours, expected)
  # Hand-checked rows of the triangle's fill: the top row holds the vertex (1,1) and the start of
  # the edge to (9,2), which visits x = 1..4 on row 1 (ties at x = 5 round toward (1,1)).
  _, fill, _ = _single(triangle)
  assert np.flatnonzero(fill[1]).tolist() == [1, 2, 3, 4, 5]
  assert np.flatnonzero(fill[9]).tolist() == [4]


def test_outside_points_equal_a_crop_of_a_larger_map():
  rng = np.random.default_rng(3)
  points = rng.uniform(-10, 26, (64, 6, 2)).astype(np.float32)
  valid = rng.random((64, 6)) < 0.8
  small = bd.boundary_attention(points, valid, 16, 16, 1.5)
  large = bd.boundary_attention(points + 20.0, valid, 56, 56, 1.5)
  np.testing.assert_allclose(small, large[:, 20:36, 20:36], atol=1e-6)
  fill = bd.scanline_fill(points, valid, 16, 16)
  np.testing.assert_array_equal(fill, bd.scanline_fill(points + 20.0, valid, 56, 56)[:, 20:36,
                                                                                       20:36])
  # A hull that covers the whole map fills it; the blur sees the garment beyond the border.
  cover = np.array([[[-9.0, -9.0], [24.0, -9.0], [24.0, 24.0], [-9.0, 24.0]]], np.float32)
  full = bd.boundary_attention(cover, np.ones((1, 4), bool), 16, 16, 2.0)  # radius 8
  np.testing.assert_allclose(full, 1.0, atol=1e-6)
  assert not bd.boundary_raster(cover, np.ones((1, 4), bool), 16, 16).any()


def test_huge_and_nan_coordinates_stay_finite():
  points = np.array([[[1e9, 5.0], [-1e9, -1e9], [5.0, 1e30], [np.nan, np.nan]]], np.float32)
  attention = np.asarray(bd.boundary_attention(points, np.ones((1, 4), bool), 16, 16, 1.0))
  assert np.isfinite(attention).all() and attention.min() >= 0.0 and attention.max() <= 1.0
  # Clamped to +-MAX_ABS_COORD, the triangle still covers the map's middle.
  assert attention[0, 8, 8] == pytest.approx(1.0, abs=1e-6)


def test_normalized_coordinates_and_jit_vmap_and_gradient():
  rng = np.random.default_rng(4)
  height, width = 20, 28
  points = rng.uniform(0, 1, (8, 5, 2)).astype(np.float32)
  valid = rng.random((8, 5)) < 0.9
  pixels = points * np.array([width, height], np.float32) - 0.5
  normalized = bd.boundary_attention(points, valid, height, width, 1.0, normalized=True)
  np.testing.assert_allclose(normalized, bd.boundary_attention(pixels, valid, height, width, 1.0))

  fn = lambda p, v: bd.boundary_attention(p, v, height, width, 1.0)
  batched = jax.jit(fn)(pixels, valid)
  per_example = jax.vmap(lambda p, v: fn(p[None], v[None])[0])(pixels, valid)
  np.testing.assert_allclose(batched, per_example, atol=1e-6)
  assert batched.shape == (8, height, width)
  np.testing.assert_allclose(batched, fn(pixels, valid), atol=1e-6)
  # No gradient flows to the landmarks (the map is piecewise constant in them), and none is NaN.
  grad = jax.grad(lambda p: fn(p, valid).sum())(jnp.asarray(pixels))
  assert np.all(np.asarray(grad) == 0.0)
  assert bd.boundary_attention(pixels, valid, height, width, 1.0,
                               dtype=jnp.bfloat16).dtype == jnp.bfloat16


def test_gaussian_blur_matches_cv2_and_sigma_zero_is_identity():
  rng = np.random.default_rng(5)
  sigma = 1.3
  radius = bd.blur_radius(sigma)
  assert radius == 6 and bd.gaussian_kernel(sigma).shape == (13,)
  maps = rng.random((3, 10 + 2 * radius, 14 + 2 * radius)).astype(np.float32)
  ours = np.asarray(bd.gaussian_blur(maps, sigma))
  assert ours.shape == (3, 10, 14)
  for m, o in zip(maps, ours, strict=True):
    ref = cv2.GaussianBlur(m, (2 * radius + 1,) * 2, sigma, sigmaY=sigma)
    np.testing.assert_allclose(o, ref[radius:-radius, radius:-radius], atol=1e-5)
  np.testing.assert_array_equal(bd.gaussian_blur(maps, 0.0), maps)
  # boundary_attention's closed-form pass along rows equals the generic blur of the fill.
  points = rng.uniform(-4, 14, (16, 7, 2)).astype(np.float32)
  valid = np.ones((16, 7), bool)
  fill = bd.scanline_fill(points, valid, 10, 10, margin=radius).astype(jnp.float32)
  np.testing.assert_allclose(bd.boundary_attention(points, valid, 10, 10, sigma),
                             bd.gaussian_blur(fill, sigma), atol=1e-6)


def test_bad_arguments_raise_clear_errors():
  points, valid = np.zeros((2, 4, 2), np.float32), np.ones((2, 4), bool)
  with pytest.raises(ValueError, match="landmarks must be"):
    bd.boundary_attention(points[..., :1], valid, 8, 8, 1.0)
  with pytest.raises(ValueError, match="valid must be"):
    bd.boundary_attention(points, valid[:, :3], 8, 8, 1.0)
  with pytest.raises(ValueError, match="height must be"):
    bd.boundary_attention(points, valid, 0, 8, 1.0)
  with pytest.raises(ValueError, match="sigma must be"):
    bd.boundary_attention(points, valid, 8, 8, -1.0)
