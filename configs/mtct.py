r"""Multi-task curriculum transfer (Dong, Gong and Zhu, BMVC 2017 poster): street-image clothing
attributes in nine single-label groups, learned on shop images first.

  python -m fashion_jax.main --config=configs/mtct.py --workdir=/tmp/mtct \
      --config.data.data_dir=DIR                  # shop_street, prepared from your CSVs
  python -m fashion_jax.main --config=configs/mtct.py:runlocal --workdir=/tmp/mtct_local
  python -m fashion_jax.main --config=configs/mtct.py:runlocal,no_adapt --workdir=...

From the poster: the MTN (NIN trunk of its table, one FC-1024 / FC-1024 / FC-N branch with a
softmax per attribute group, the sum of the groups' cross-entropies); stage 1 trains it on shop
images; stage 2 starts from stage 1 and fine-tunes the FC layers on street images with their
labels and the cross-domain t-STE term on (street anchor, shop positive of the same item, shop
negative of another item) triplets; metrics mAP_cls, mP_ins, mR_ins on street test images
(fashion_jax/metrics.py states the definitions). The clothing crop (the poster uses a Faster
R-CNN detector) is the annotated bbox here (`data.crop = "bbox"`). With
`--config.data.data_dir=DIR` the config reads `shop_street` (your X-Domain-style CSVs,
docs/datasets.md; X-Domain itself is not freely downloadable); without, the synthetic set with
its X-Domain-style labels (`data.synth.attributes = "xdomain"`).

Choices the poster leaves open, made here:
  * t-STE with alpha = 1 (the t-STE default), weight 1 against the classification loss,
    summed over the batch's triplets as the poster's formula (`loss.triplet_reduction`; the
    classification terms are means over images, so at batch 64 the triplet term weighs about
    64 times its mean; "mean" was this package's default before December 2026 and the
    docs/ablations.md runs used it), the kernel on L2-normalised embeddings (the concatenated
    second FC layers; systems/mtct.py);
    f_t (street branches) for the anchor, f_s (the stage-1 shop branches, frozen) for positive
    and negative;
  * stage 2 fine-tunes all three FC layers of every street branch (`street_branches/.*`),
    starting as a copy of the stage-1 shop branches; the trunk and the shop branches stay as
    stage 1 left them;
  * one triplet per street anchor per batch row, the positive a shop image of the anchor's item
    (uniformly among them), the negative a shop image of another item drawn uniformly from all
    shop images (data/batch_sources.Tuples; deterministic per seed and step);
  * Adam at 1e-4, batch 64, 30 epochs of stage 1 and 15 of stage 2 (each phase with its own
    optimiser), the best checkpoint by validation mAP_cls on street images, chosen among the
    street stage's evaluations (stage-1 evaluations score the shop branches that stage trains,
    on street images, and are logged, but the street branches predict in the end);
  * 224x224 input (the table's strides end in 7x7x512), no batch norm (as NIN), the pool5 map
    flattened into the first FC layer.

Variants (the poster's comparisons, Table 2 and its two figures), comma-separated after the path:
  no_adapt      MTN (No Adpt): stage 1 only, tested on street images;
  united        MTN (UD): one stage on shop and street images together;
  finetune      MTN (FTT): stage 1, then the FC layers fine-tuned on street labels, no triplets;
  (default)     MTCT: stage 1, then stage 2 with the t-STE term;
  end_to_end    both domains and both losses from the start, in one stage (triplet batches:
                street anchors classified by the street branches, shop positives by the shop
                branches, everything trained together);
  margin        MTCT with a margin triplet loss (margin 0.2 on squared distances) for t-STE;
  runlocal      the CPU size: a NIN at 1/8 width with batch norm, 64x64 synthetic crops.
"""

from fashion_jax import config_base

COMPARISONS = ("no_adapt", "united", "finetune", "end_to_end", "margin")


def _stage1(epochs):
  return dict(name="shop", num_epochs=epochs, data=dict(domain="shop"),
              model=dict(branches="shop"))


def _stage2(epochs, triplets: bool):
  # Triplets draw street anchors and shop partners from every training record; without them
  # the phase reads the street images only.
  data = (dict(domain="", tuples="triplet", anchor_domain="street", partner_domain="shop")
          if triplets else dict(domain="street"))
  return dict(name="street", num_epochs=epochs, trainable="street_branches/.*",
              copy={"street_branches": "shop_branches"}, data=data,
              loss=dict(triplet_weight=1.0 if triplets else 0.0))


def get_config(arg=None):
  variants = config_base.parse_variants(arg, flags=("runlocal", *COMPARISONS))
  c = config_base.base_config()
  c.system = "mtct"
  c.batch_size = 64
  c.data.paper_dataset = "shop_street"
  c.data.synth = config_base.synth_data(image_size=256, num_train=8000, num_validation=1000,
                                        num_test=2000, attributes="xdomain")
  c.data.image_size = (224, 224)
  c.data.crop = "bbox"
  c.data.bbox_margin = 0.05
  c.data.eval_domain = "street"
  # The run scores street images (the poster's tables); shop images are scored beside them
  # (results_test_shop.json), so one run shows what the transfer costs in the source domain.
  c.evals = (dict(name="shop", data=dict(eval_domain="shop")),)
  c.data.augment.update(dict(flip=True, scale=(0.9, 1.1), translate=0.05, colour=0.1))
  c.model.update(dict(fc_width=1024, branches="street", width_scale=1.0, batch_norm=False))
  # An ImageNet NIN trunk (docs/pretrained.md: no public file maps onto the poster's table, so
  # one you trained and saved with fashion_jax.models.weights.save_variables).
  c.model.pretrained.trunk = ""
  # The poster's t-STE term sums over the triplets; "mean" divides it by the batch.
  c.loss.update(dict(triplet_loss="tste", triplet_weight=1.0, alpha=1.0, margin=0.2,
                     classify_partners=False, triplet_reduction="sum"))
  c.optimizer.update(dict(name="adam", learning_rate=1e-4, schedule="constant"))
  stage1, stage2 = 30, 15
  if variants.get("runlocal"):
    stage1, stage2 = 40, 20
  c.phases = [_stage1(stage1), _stage2(stage2, triplets=True)]
  c.log_every_steps = 50
  c.checkpoint_every_steps = 2000

  if variants.get("no_adapt"):
    c.phases = [_stage1(stage1)]
    c.model.branches = "shop"
  elif variants.get("united"):
    c.phases = [dict(name="shop_and_street", num_epochs=stage1 + stage2)]
    c.model.branches = "shop"
  elif variants.get("finetune"):
    c.phases = [_stage1(stage1), _stage2(stage2, triplets=False)]
  elif variants.get("end_to_end"):
    c.phases = [dict(name="end_to_end", num_epochs=stage1 + stage2,
                     data=dict(tuples="triplet", anchor_domain="street", partner_domain="shop"),
                     loss=dict(classify_partners=True))]
  elif variants.get("margin"):
    c.loss.triplet_loss = "margin"
  if variants.get("runlocal"):  # 2 CPU cores: a 1/8-width NIN with batch norm, 64x64 crops
    c.batch_size = 32
    c.data.synth = config_base.synth_data(image_size=128, num_train=2000, num_validation=200,
                                          num_test=400, attributes="xdomain")
    c.data.image_size = (64, 64)
    c.model.update(dict(fc_width=128, width_scale=0.125, batch_norm=True))
    c.optimizer.learning_rate = 1e-3
    c.log_every_steps = 20
    c.eval_every_epochs = 4.0
  return c
