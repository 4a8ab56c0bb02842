"""Shared readers: list files, cells, and the image policy."""

import io

import pytest
from fixtures.real import jpeg_bytes, truncate, write_jpeg, write_text
from PIL import Image

from fashion_jax.data import formats


def test_listing_with_crlf_padding_and_blank_tail(tmp_path):
  path = write_text(tmp_path / "list.txt",
                    "2\r\nimage_name  x\r\nimg/a b.jpg     1\r\n\r\nimg/c.jpg       22  \r\n\r\n")
  rows = formats.read_listing(path, "image_name")
  assert [(r.line, r.tokens) for r in rows] == [(3, ("img/a", "b.jpg", "1")),
                                                (5, ("img/c.jpg", "22"))]


@pytest.mark.parametrize("text,message", [
    ("", r"list.txt:1: expected the count line"),
    ("2 rows\nimage_name x\n", r"list.txt:1: expected the count line"),
    ("-1\nimage_name x\n", r"list.txt:1: expected the count line"),
    ("1\n", r"list.txt:2: expected the column-name line starting with 'image_name'"),
    ("0\nimage_name x\nimg/a.jpg 1\n", r"list.txt:1: the count line says 0 rows but .* has 1"),
])
def test_listing_header_errors(tmp_path, text, message):
  with pytest.raises(formats.AnnotationError, match=message):
    formats.read_listing(write_text(tmp_path / "list.txt", text), "image_name")


def test_cells(tmp_path):
  assert formats.to_ints(["095", "-05", "+3"], "f", 1, "x") == [95, -5, 3]
  assert formats.to_floats(["1.5", "007"], "f", 1, "x") == [1.5, 7.0]
  with pytest.raises(formats.AnnotationError, match=r"f:7: x: 'nan' is not a finite number"):
    formats.to_floats(["1", "nan"], "f", 7, "x")
  with pytest.raises(formats.AnnotationError, match=r"f:2: x: '1.0' is not an integer"):
    formats.to_ints(["1", "1.0"], "f", 2, "x")
  with pytest.raises(formats.AnnotationError, match=r"f:3: y: 4 is not one of \(0, 1\)"):
    formats.to_choice(4, (0, 1), "f", 3, "y")
  with pytest.raises(FileNotFoundError, match="nothing.txt"):
    formats.read_rows(tmp_path / "nothing.txt")
  (tmp_path / "bad.txt").write_bytes(b"3\nimage_name\nimg/a.jpg 1\nimg/\xff.jpg 2\n")
  with pytest.raises(formats.AnnotationError, match="bad.txt:4: not UTF-8 text"):
    formats.read_rows(tmp_path / "bad.txt")


def test_find_first_names_every_candidate(tmp_path):
  (tmp_path / "Img" / "img").mkdir(parents=True)
  assert formats.find_first(tmp_path, ("img", "Img/img"), "images") == tmp_path / "Img" / "img"
  with pytest.raises(FileNotFoundError, match=r"annotations not found; .*Anno_coarse, .*Anno$"):
    formats.find_first(tmp_path, ("Anno_coarse", "Anno"), "annotations")


def test_image_policy(tmp_path):
  good = write_jpeg(tmp_path / "good.jpg")
  assert formats.check_image(good) == formats.ImageCheck(formats.IMAGE_OK, size=(320, 320))
  assert formats.image_bytes(good, reencode=False) == jpeg_bytes(0)
  truncated = truncate(write_jpeg(tmp_path / "cut.jpg"))
  assert formats.check_image(truncated) == formats.ImageCheck(
      formats.IMAGE_CORRUPT, "truncated image: the data ends early")
  (tmp_path / "junk.jpg").write_bytes(b"<html>not found</html>")
  assert formats.check_image(tmp_path / "junk.jpg").status == formats.IMAGE_CORRUPT
  Image.new("CMYK", (5, 4), (0, 255, 0, 0)).save(tmp_path / "cmyk.jpg")
  check = formats.check_image(tmp_path / "cmyk.jpg")
  assert check.status == formats.IMAGE_REENCODE and "CMYK" in check.reason
  reencoded = formats.image_bytes(tmp_path / "cmyk.jpg", reencode=True)
  (tmp_path / "rgb.jpg").write_bytes(reencoded)
  with Image.open(tmp_path / "rgb.jpg") as image:
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (5, 4))
  Image.new("L", (3, 3)).save(tmp_path / "gray.png")  # TFDS expands grayscale itself
  assert formats.check_image(tmp_path / "gray.png").status == formats.IMAGE_OK
  with Image.open(io.BytesIO(formats.empty_mask_png())) as mask:
    assert (mask.format, mask.mode, mask.size, mask.getpixel((0, 0))) == ("PNG", "L", (1, 1), 0)
