//! Data sources, image files and the hash text encoder (mdm::data, mdm::image_io, mdm::text).

use std::path::{Path, PathBuf};

use mdm::data::{
    COLOURS, DataConfig, Dataset, FashionMnist, Folder, NUM_SHAPE_CLASSES, SHAPES, Shapes, make_batch, open,
    resize_center_crop, resize_rgb,
};
use mdm::image_io::{read_image, read_png, save_grid, save_strip, to_u8, write_png};
use mdm::text::{EOS, HashTextEncoder};
use tensor::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

// ----- shapes -----

#[test]
fn shapes_are_deterministic_and_indices_differ() {
    let (a, b) = (Shapes::new(7), Shapes::new(7));
    for i in 0..5 {
        let (x, y) = (a.get(i, 32).unwrap(), b.get(i, 32).unwrap());
        assert_eq!(vals(&x.image), vals(&y.image), "index {i}");
        assert_eq!((x.label, &x.caption), (y.label, &y.caption));
    }
    let imgs: Vec<Vec<f32>> = (0..8).map(|i| vals(&a.get(i, 32).unwrap().image)).collect();
    for i in 0..8 {
        for j in i + 1..8 {
            assert_ne!(imgs[i], imgs[j], "indices {i} and {j} render the same image");
        }
    }
    assert_ne!(vals(&Shapes::new(8).get(0, 32).unwrap().image), imgs[0], "seed is ignored");
}

#[test]
fn shapes_labels_cover_all_classes_and_captions_match() {
    let ds = Shapes::new(1);
    assert_eq!(ds.num_classes(), Some(16));
    assert_eq!(ds.len(), None);
    let mut seen = [0usize; NUM_SHAPE_CLASSES];
    for i in 0..400 {
        let p = ds.params(i);
        let s = ds.get(i, 8).unwrap();
        let label = s.label.unwrap();
        assert!((0..16).contains(&label));
        seen[label as usize] += 1;
        // Parse the caption independently: "a <colour> <shape> <position>".
        let cap = s.caption.unwrap();
        let w: Vec<&str> = cap.split(' ').collect();
        assert_eq!(w[0], "a", "{cap}");
        let c = COLOURS.iter().position(|(n, _)| *n == w[1]).expect("colour word");
        let k = SHAPES.iter().position(|n| *n == w[2]).expect("shape word");
        assert_eq!(label, (k * 4 + c) as i64, "caption `{cap}` vs label {label}");
        assert_eq!(ds.class_name(label as usize).unwrap(), format!("{} {}", w[1], w[2]));
        let pos = w[3..].join(" ");
        let vert = ["top", "", "bottom"][p.row];
        let horiz = ["left", "", "right"][p.col];
        if p.row == 1 && p.col == 1 {
            assert_eq!(pos, "in the center");
        } else {
            assert!(pos.contains(vert) && pos.contains(horiz), "{pos} for row {} col {}", p.row, p.col);
        }
    }
    // 400 draws of 16 classes: each expected 25 times; all classes must occur.
    assert!(seen.iter().all(|&n| n > 5), "class counts {seen:?}");
    assert_eq!(ds.class_name(16), None);
}

#[test]
fn shapes_pixels_are_quantised_and_in_range() {
    let ds = Shapes::new(3);
    for i in 0..20 {
        for x in vals(&ds.get(i, 16).unwrap().image) {
            assert!((-127.0 / 128.0..=1.0).contains(&x), "{x}");
            let k = x * 128.0 + 127.0;
            assert!((k - k.round()).abs() < 1e-4, "{x} is not (u8 − 127)/128");
        }
    }
}

/// Analytic-coverage rendering vs an independent 8×8 supersampled box-filter reference (rendered at
/// 8× and averaged): the mean error must be under 0.25 grey levels and the worst pixel within 30 %
/// of the shape/background contrast (measured: mean ≤ 0.03, worst 0.25 at a cross's inner corner;
/// a renderer without anti-aliasing has errors near 50 % of the contrast). Also checks
/// that edge pixels take intermediate values.
#[test]
fn shapes_are_antialiased() {
    let ds = Shapes::new(11);
    for i in 0..12 {
        let p = ds.params(i);
        let (n, ss) = (32, 8);
        let img = p.render(n);
        let big = p.render(n * ss);
        let (mut sum, mut worst, mut intermediate) = (0.0f64, 0.0f64, 0);
        let fg = COLOURS[p.colour].1;
        for j in 0..n {
            for x in 0..n {
                for c in 0..3 {
                    let mut acc = 0.0;
                    for dy in 0..ss {
                        for dx in 0..ss {
                            acc += big[((j * ss + dy) * n * ss + x * ss + dx) * 3 + c] as f64;
                        }
                    }
                    let reference = acc / (ss * ss) as f64;
                    let v = img[(j * n + x) * 3 + c] as f64;
                    let contrast = (fg[c] as f64 - p.background as f64).abs().max(1.0);
                    sum += (v - reference).abs();
                    worst = worst.max((v - reference).abs() / contrast);
                    if c == 0 && v != fg[0] as f64 && v != p.background as f64 {
                        intermediate += 1;
                    }
                }
            }
        }
        let mean = sum / (n * n * 3) as f64;
        assert!(mean < 0.25, "index {i} ({:?}): mean error {mean}", p);
        assert!(worst < 0.3, "index {i} ({:?}): worst relative error {worst}", p);
        assert!(intermediate >= 8, "index {i}: only {intermediate} edge pixels are blended");
    }
}

#[test]
fn shapes_are_large_and_have_their_colour() {
    let ds = Shapes::new(5);
    let n = 64;
    for i in 0..60 {
        let p = ds.params(i);
        let s = vals(&ds.get(i, n).unwrap().image);
        let (mut x0, mut x1, mut y0, mut y1) = (n, 0, n, 0);
        let mut mean = [0f64; 3];
        let mut count = 0.0;
        for j in 0..n {
            for x in 0..n {
                if p.coverage(x, j, n) >= 1.0 {
                    (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(j), y1.max(j));
                    for (c, m) in mean.iter_mut().enumerate() {
                        *m += s[(c * n + j) * n + x] as f64;
                    }
                    count += 1.0;
                }
            }
        }
        let extent = (x1 + 1 - x0).max(y1 + 1 - y0) as f64 / n as f64;
        assert!(extent >= 0.4, "index {i}: shape spans only {extent} of the image");
        let [r, g, b] = mean.map(|m| m / count);
        let name = COLOURS[p.colour].0;
        let ok = match name {
            "red" => r > g + 0.5 && r > b + 0.5,
            "green" => g > r + 0.5 && g > b + 0.5,
            "blue" => b > r + 0.5 && b > g + 0.5,
            _ => r > b + 0.5 && g > b + 0.5,
        };
        assert!(ok, "index {i}: {name} shape has mean RGB {r:.2} {g:.2} {b:.2}");
    }
}

#[test]
fn make_batch_stacks_examples_in_order() {
    let ds = Shapes::new(2);
    let b = make_batch(&ds, 10, 3, 16).unwrap();
    assert_eq!(b.images.shape(), [3, 3, 16, 16]);
    let labels = b.labels.unwrap().to_vec::<i64>().unwrap();
    let all = vals(&b.images);
    for i in 0..3 {
        let s = ds.get(10 + i as u64, 16).unwrap();
        assert_eq!(labels[i], s.label.unwrap());
        assert_eq!(b.captions[i], s.caption.unwrap());
        assert_eq!(&all[i * 768..(i + 1) * 768], &vals(&s.image)[..]);
    }
    assert!(make_batch(&ds, 0, 0, 16).is_err());
}

// ----- Fashion-MNIST -----

fn fixture_pixel(k: usize, y: usize, x: usize) -> f32 {
    (((50 * k + 7 * y + 3 * x) % 256) as f32 - 127.0) / 128.0
}

#[test]
fn fashion_fixture_loads_labels_pixels_and_padding() {
    let ds = FashionMnist::open(&fixture("fashion-raw"), 32).unwrap();
    assert_eq!(ds.len(), Some(4));
    assert_eq!(ds.num_classes(), Some(10));
    assert_eq!(ds.class_name(9).as_deref(), Some("ankle boot"));
    for (k, &want) in [3i64, 0, 9, 7].iter().enumerate() {
        let s = ds.get(k as u64, 32).unwrap();
        assert_eq!(s.label, Some(want));
        assert_eq!(s.caption, ds.class_name(want as usize));
        let v = vals(&s.image);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let inside = (2..30).contains(&y) && (2..30).contains(&x);
                    let want = if inside { fixture_pixel(k, y - 2, x - 2) } else { -127.0 / 128.0 };
                    assert_eq!(v[(c * 32 + y) * 32 + x], want, "image {k} c{c} y{y} x{x}");
                }
            }
        }
    }
    assert_eq!(ds.get(0, 16).unwrap().image.shape(), [3, 16, 16]);
    assert!(ds.get(4, 32).is_err());
}

#[test]
fn fashion_gz_equals_raw_and_batches_wrap() {
    let raw = open(&DataConfig::FashionMnist { dir: Some(fixture("fashion-raw")), pad_to: None }).unwrap();
    let gz = open(&DataConfig::FashionMnist { dir: Some(fixture("fashion-gz")), pad_to: Some(32) }).unwrap();
    for i in 0..4 {
        let (a, b) = (raw.get(i, 32).unwrap(), gz.get(i, 32).unwrap());
        assert_eq!(vals(&a.image), vals(&b.image));
        assert_eq!(a.label, b.label);
    }
    let b = make_batch(gz.as_ref(), 3, 3, 32).unwrap();
    assert_eq!(b.labels.unwrap().to_vec::<i64>().unwrap(), [7, 3, 0]);
}

#[test]
fn fashion_missing_folder_says_how_to_install() {
    let e = open(&DataConfig::FashionMnist { dir: Some("/nonexistent/fm".into()), pad_to: None })
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("install with `apt-get install dataset-fashion-mnist`"), "{e}");
    assert!(e.contains("/nonexistent/fm") && e.contains("train-images-idx3-ubyte"), "{e}");
}

/// Copies the raw fixture into a temp dir, letting `edit` change (images, labels) bytes.
fn broken_fixture(edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut img = std::fs::read(fixture("fashion-raw/train-images-idx3-ubyte")).unwrap();
    let mut lab = std::fs::read(fixture("fashion-raw/train-labels-idx1-ubyte")).unwrap();
    edit(&mut img, &mut lab);
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), img).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), lab).unwrap();
    dir
}

fn open_err(dir: &Path) -> String {
    FashionMnist::open(dir, 32).expect_err("must fail").to_string()
}

#[test]
fn malformed_idx_files_are_errors_naming_file_and_problem() {
    let d = broken_fixture(|img, _| img[3] = 0x01); // magic 2049 in the image file
    let e = open_err(d.path());
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("wrong IDX magic number 2049"), "{e}");

    let d = broken_fixture(|img, _| img.truncate(img.len() - 10));
    let e = open_err(d.path());
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("truncated"), "{e}");
    assert!(e.contains("4 images of 28×28") && e.contains("3126 bytes"), "{e}");

    let d = broken_fixture(|img, _| img.truncate(9));
    assert!(open_err(d.path()).contains("truncated IDX header"));

    let d = broken_fixture(|_, lab| {
        lab.pop();
        lab[7] = 3;
    });
    let e = open_err(d.path());
    assert!(e.contains("train-labels-idx1-ubyte") && e.contains("3 labels but"), "{e}");
    assert!(e.contains("has 4 images"), "{e}");

    let d = broken_fixture(|_, lab| lab[9] = 10);
    assert!(open_err(d.path()).contains("label 10 of image 1 is not in 0..10"));

    // A cut gzip stream.
    let d = tempfile::tempdir().unwrap();
    let gz = std::fs::read(fixture("fashion-gz/train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.path().join("train-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    std::fs::copy(
        fixture("fashion-gz/train-labels-idx1-ubyte.gz"),
        d.path().join("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let e = open_err(d.path());
    assert!(e.contains("train-images-idx3-ubyte.gz") && e.contains("corrupt gzip"), "{e}");
}

// ----- image folder -----

/// An 8×4 image: columns 0–1 red, 2–5 green, 6–7 blue.
fn striped() -> Vec<u8> {
    let mut v = Vec::new();
    for _y in 0..4 {
        for x in 0..8 {
            v.extend_from_slice(match x {
                0 | 1 => &[255, 0, 0],
                2..=5 => &[0, 255, 0],
                _ => &[0, 0, 255],
            });
        }
    }
    v
}

fn write_folder(tsv: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_png(&d.path().join("a.png"), 8, 4, &striped()).unwrap();
    let solid: Vec<u8> = (0..16 * 16).flat_map(|_| [128u8, 64, 200]).collect();
    let mut jpg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpg, 100).encode(&solid, 16, 16, jpeg_encoder::ColorType::Rgb).unwrap();
    std::fs::write(d.path().join("b.jpg"), jpg).unwrap();
    std::fs::write(d.path().join("notes.png"), b"not a png").unwrap();
    std::fs::write(d.path().join("captions.tsv"), tsv).unwrap();
    d
}

const TSV: &str = "path\tcaption\na.png\tstripes\n# comment\nb.jpg a purple square\n\
                   b.jpg\tpurple\nnotes.png\tbroken\nmissing.png\tgone\n";

#[test]
fn folder_bad_lines_error_with_line_or_are_skipped_and_counted() {
    let d = write_folder(TSV);
    let cfg = DataConfig::Folder { dir: d.path().into(), tsv: None, skip_bad: false };
    let e = open(&cfg).err().unwrap().to_string();
    assert!(e.contains("captions.tsv:4") && e.contains("missing caption column"), "{e}");

    let cfg = DataConfig::Folder { dir: d.path().into(), tsv: None, skip_bad: true };
    let ds = open(&cfg).unwrap();
    assert_eq!((ds.len(), ds.skipped()), (Some(2), 3));
    let f = Folder::open(d.path(), &d.path().join("captions.tsv"), true).unwrap();
    let lines: Vec<usize> = f.skipped_lines().iter().map(|s| s.line).collect();
    assert_eq!(lines, [4, 6, 7]);
    assert!(f.skipped_lines()[1].reason.contains("notes.png"), "{:?}", f.skipped_lines());
}

#[test]
fn folder_images_are_resized_and_centre_cropped() {
    let d = write_folder("a.png\tstripes\nb.jpg\tpurple\n");
    let tsv = Some("captions.tsv".into()); // relative to the folder
    let ds = open(&DataConfig::Folder { dir: d.path().into(), tsv, skip_bad: false }).unwrap();
    // Short side 4 already: the centre 4 columns (2–5) are pure green.
    let s = ds.get(0, 4).unwrap();
    assert_eq!(s.caption.as_deref(), Some("stripes"));
    assert_eq!(s.label, None);
    let v = vals(&s.image);
    assert!(v[..16].iter().all(|&x| x == -127.0 / 128.0), "R {:?}", &v[..16]);
    assert!(v[16..32].iter().all(|&x| x == 1.0), "G {:?}", &v[16..32]);
    // JPEG at quality 100 of a solid colour, downscaled 16 → 8: within 3 levels.
    let v = vals(&ds.get(1, 8).unwrap().image);
    for (c, want) in [128.0f32, 64.0, 200.0].iter().enumerate() {
        for x in &v[c * 64..(c + 1) * 64] {
            assert!((x * 128.0 + 127.0 - want).abs() <= 3.0, "channel {c}: {x}");
        }
    }
    let (w, h, _) = read_image(&d.path().join("b.jpg")).unwrap();
    assert_eq!((w, h), (16, 16));
    assert!(ds.get(2, 8).is_err());
}

/// Hand-computed antialiased bilinear weights (PIL's BILINEAR): a 2× downscale of a row
/// [a, b, c, d] gives [(3a + 3b + c)/7, (b + 3c + 3d)/7]; a 2× upscale of [a, b] gives
/// [a, (3a + b)/4, (a + 3b)/4, b].
#[test]
fn resize_matches_hand_computed_bilinear_weights() {
    let row = |v: &[u8]| -> Vec<u8> { v.iter().flat_map(|&x| [x, x, x]).collect() };
    let down = resize_rgb(&row(&[0, 70, 140, 210]), 4, 1, 2, 1);
    assert_eq!(down, row(&[50, 160]));
    let up = resize_rgb(&row(&[0, 200]), 2, 1, 4, 1);
    assert_eq!(up, row(&[0, 50, 150, 200]));
    // Vertical direction and centre crop: a 2×6 (w×h) column, short side 2 → unchanged width,
    // rows 2–3 kept.
    let col: Vec<u8> = (0..6u8).flat_map(|y| [y * 10; 6]).collect();
    assert_eq!(resize_center_crop(&col, 2, 6, 2), [20, 20, 20, 20, 20, 20, 30, 30, 30, 30, 30, 30]);
}

// ----- PNG grids -----

#[test]
fn save_grid_round_trips_through_read_png() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("grid.png");
    // Values (k − 127)/128 map back to k exactly.
    let hi: Vec<f32> = (0..2 * 3 * 16).map(|i| ((i * 5 % 256) as f32 - 127.0) / 128.0).collect();
    let mut lo: Vec<f32> = (0..2 * 3 * 4).map(|i| ((i * 11 % 256) as f32 - 127.0) / 128.0).collect();
    lo[0] = 3.0; // clamps to 255
    lo[1] = -3.0; // clamps to 0
    let hi_t = Tensor::from_vec(hi.clone(), &[2, 3, 4, 4]).unwrap();
    let lo_t = Tensor::from_vec(lo.clone(), &[2, 3, 2, 2]).unwrap();
    save_grid(&path, &[hi_t, lo_t]).unwrap();
    let (w, h, rgb) = read_png(&path).unwrap();
    assert_eq!((w, h), (4 + 2 + 4, 4 + 2 + 4));
    let px = |x: usize, y: usize, c: usize| rgb[(y * w + x) * 3 + c];
    for r in 0..2 {
        for y in 0..4 {
            for x in 0..4 {
                for c in 0..3 {
                    let oy = r * 6 + y;
                    assert_eq!(px(x, oy, c), to_u8(hi[((r * 3 + c) * 4 + y) * 4 + x]));
                    let want = to_u8(lo[((r * 3 + c) * 2 + y / 2) * 2 + x / 2]);
                    assert_eq!(px(6 + x, oy, c), want, "low-res r{r} y{y} x{x} c{c}");
                }
            }
        }
    }
    assert_eq!([px(6, 0, 0), px(7, 0, 0), px(8, 0, 0), px(9, 1, 0)], [255, 255, 0, 0]);
    assert_eq!((px(4, 0, 0), px(5, 9, 2), px(0, 4, 1)), (127, 127, 127)); // gaps
    assert_eq!(px(0, 0, 0), 0);
    // Atomic write leaves no temporary file behind.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    // Mismatched batch or a non-dividing size is an error.
    let bad = Tensor::zeros(&[1, 3, 3, 3], tensor::DType::F32);
    let e = save_grid(&path, &[Tensor::zeros(&[2, 3, 4, 4], tensor::DType::F32), bad]);
    assert!(e.unwrap_err().to_string().contains("columns[1]"));
}

#[test]
fn save_strip_places_frames_side_by_side() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("strip.png");
    let frames: Vec<Tensor> = (0..3)
        .map(|k| Tensor::full(&[3, 2, 3], (k as f64 * 60.0 - 127.0) / 128.0, tensor::DType::F32))
        .collect();
    save_strip(&path, &frames).unwrap();
    let (w, h, rgb) = read_png(&path).unwrap();
    assert_eq!((w, h), (3 * 3 + 2 * 2, 2));
    let row: Vec<u8> = (0..w).map(|x| rgb[x * 3]).collect();
    assert_eq!(row, [0, 0, 0, 127, 127, 60, 60, 60, 127, 127, 120, 120, 120]);
}

// ----- text encoder -----

#[test]
fn text_encoder_pads_masks_and_is_deterministic() {
    let enc = HashTextEncoder::new(16, 8);
    let caps: Vec<String> = ["A red circle", "blue", ""].map(String::from).to_vec();
    let (tok, mask) = enc.encode(&caps).unwrap();
    assert_eq!(tok.shape(), [3, 4, 16]);
    assert_eq!(mask.to_vec::<u8>().unwrap(), [1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0]);
    let t = vals(&tok);
    let m = mask.to_vec::<u8>().unwrap();
    for (p, &mp) in m.iter().enumerate() {
        if mp == 0 {
            assert!(t[p * 16..(p + 1) * 16].iter().all(|&x| x == 0.0), "padded token {p}");
        }
    }
    let (tok2, mask2) = HashTextEncoder::new(16, 8).encode(&caps).unwrap();
    assert_eq!((vals(&tok2), mask2.to_vec::<u8>().unwrap()), (t.clone(), m));
    // Token = word vector + position term; the word vector is a unit vector.
    let tok_at = |b: usize, p: usize| t[(b * 4 + p) * 16..(b * 4 + p + 1) * 16].to_vec();
    let sub = |a: Vec<f32>, p: usize| -> Vec<f32> {
        a.iter().zip(enc.position_term(p)).map(|(x, y)| x - y).collect()
    };
    let red = sub(tok_at(0, 1), 1);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    assert!(close(&red, &enc.word_vector("red")));
    let norm: f32 = red.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    // Case-insensitive; the end token sits after the last word.
    assert!(close(&sub(tok_at(0, 0), 0), &enc.word_vector("a")));
    assert!(close(&sub(tok_at(1, 1), 1), &enc.word_vector(EOS)));
    assert!(close(&sub(tok_at(2, 0), 0), &enc.word_vector(EOS)));
}

#[test]
fn text_encoder_same_word_same_vector_and_truncation() {
    let enc = HashTextEncoder::new(8, 3);
    let caps: Vec<String> = ["red square at the top", "RED circle"].map(String::from).to_vec();
    let (tok, mask) = enc.encode(&caps).unwrap();
    assert_eq!(tok.shape(), [2, 3, 8]); // max_len 3: two words + </s>
    assert_eq!(mask.to_vec::<u8>().unwrap(), [1, 1, 1, 1, 1, 1]);
    let t = vals(&tok);
    assert_eq!(t[0..8], t[24..32], "`red` at position 0 in both captions");
    assert_ne!(t[8..16], t[32..40], "square vs circle");
    assert_eq!(t[16..24], t[40..48], "both end with </s>");
    assert_ne!(enc.word_vector("red"), enc.word_vector("blue"));
    assert!(HashTextEncoder::new(0, 3).encode(&caps).is_err());
    assert!(enc.encode(&[]).is_err());
}

// ----- config -----

#[test]
fn data_config_parses_cli_values_and_round_trips_toml() {
    let cases = [
        ("shapes", DataConfig::Shapes { seed: 0 }),
        ("shapes:9", DataConfig::Shapes { seed: 9 }),
        ("fashion-mnist", DataConfig::FashionMnist { dir: None, pad_to: None }),
        ("fashion-mnist:/d", DataConfig::FashionMnist { dir: Some("/d".into()), pad_to: None }),
        ("folder:/x", DataConfig::Folder { dir: "/x".into(), tsv: None, skip_bad: false }),
    ];
    for (s, want) in cases {
        let got: DataConfig = s.parse().unwrap();
        assert_eq!(got, want, "{s}");
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Wrap {
            data: DataConfig,
        }
        let text = toml::to_string(&Wrap { data: got.clone() }).unwrap();
        assert_eq!(toml::from_str::<Wrap>(&text).unwrap().data, got, "{text}");
    }
    for bad in ["bogus", "folder", "folder:", "shapes:x"] {
        let e = bad.parse::<DataConfig>().unwrap_err().to_string();
        assert!(e.contains(bad), "{e}");
    }
    let ds = open(&DataConfig::Shapes { seed: 4 }).unwrap();
    assert!(ds.describe().contains("16 classes"));
}
