"""Training-time augmentation of image batches, described by a short spec.

A spec is a comma-separated string of `name` or `name=value` ("flip,rotate=5,crop=0.9") or
a dict {name: value} (None or True take the default value). The augmentations run on whole
batches in the tf.data pipeline, in this fixed order whatever the order of the spec:

| name        | value (default)                            | what it does                       |
| ----------- | ------------------------------------------ | ---------------------------------- |
| flip        | horizontal, vertical or horizontal_and_vertical (horizontal) | random mirror    |
| altflip     | horizontal (horizontal)                    | airbench's alternating mirror: a   |
|             |                                            | seeded coin per image for epoch 0, |
|             |                                            | inverted every other epoch         |
| rotate      | degrees (5)                                | rotation by up to ±value degrees   |
| translate   | fraction of the side (0.1)                 | shift by up to ±value              |
| zoom        | fraction, up to 0.9 (0.1)                  | zoom in or out by up to value      |
| crop        | smallest side fraction (0.9)               | random crop, resized back          |
| shift       | pixels (2)                                 | whole-pixel shift by up to ±value, |
|             |                                            | borders reflected (pad and crop)   |
| lens        | strength (0.2)                             | barrel or pincushion distortion    |
| cutout      | pixels (8)                                 | a square of that side at a random  |
|             |                                            | centre, clipped at the borders,    |
|             |                                            | set to mid-grey (DeVries & Taylor, |
|             |                                            | 2017)                              |
| brightness  | fraction of the value range (0.2)          | add up to ±value of the range      |
| contrast    | fraction (0.2)                             | scale contrast by 1 ± value        |
| color       | fraction (0.2)                             | brightness, contrast, saturation,  |
|             |                                            | hue jitter (RGB only)              |
| randaugment | operations per image (2)                   | RandAugment (Cubuk et al., 2020)   |
| mixup       | Beta alpha (0.2)                           | MixUp (Zhang et al., 2018)         |
| cutmix      | Beta alpha (1.0)                           | CutMix (Yun et al., 2019)          |

altflip (Jordan 2024, "alternating flip") mirrors each training image in exactly every other
epoch, so two epochs show both sides of every image; it needs each image's position and the
epoch, which training's epoch stream gives (one process; a single call or preview draws the
coins of epoch 0).
flip, rotate, translate, zoom and crop are drawn together and applied in one resampling
(`RandomAffine`); shift moves whole pixels, no interpolation (`PixelShift`: the CIFAR papers'
"pad by p, take a random crop", reflecting rather than zero-padding, as airbench); lens is
`LensDistortion`; cutout is `Cutout`, after them; the others are the keras.layers of those
names.
MixUp and CutMix mix the labels too. Images are at their raw value scale (`value_range`,
e.g. (0, 255)); labels are one-hot.
"""

import math

import keras
import tensorflow as tf

from kerascnn.errors import InputError, InputTypeError

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _number(name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"Augmentation {name}={value!r}: the value must be a number.") from None
    if not math.isfinite(number):
        raise InputError(f"Augmentation {name}={value!r}: the value must be a finite number.")
    return number


def _fraction(name, value, high=1.0):
    value = _number(name, value)
    if not 0 < value <= high:
        raise InputError(f"Augmentation {name}={value!r}: the value must be in (0, {high}].")
    return value


def _positive(name, value):
    value = _number(name, value)
    if not value > 0:
        raise InputError(f"Augmentation {name}={value!r}: the value must be positive.")
    return value


def _flip_mode(name, value):
    if value not in FLIP_MODES:
        raise InputError(f"Augmentation {name}={value!r}: the value must be one of {FLIP_MODES}.")
    return value


def _horizontal(name, value):
    if value != "horizontal":
        raise InputError(f"Augmentation {name}={value!r}: alternating flips are horizontal; "
                         f"write {name} alone.")
    return value


def _counting(what):
    """A validator of whole numbers >= 1, its error naming `what` they count."""
    def validate(name, value):
        number = _number(name, value)
        if number != int(number) or number < 1:
            raise InputError(f"Augmentation {name}={value}: the value must be {what} >= 1.")
        return int(number)

    return validate


_pixels = _counting("a whole number of pixels")
_operations = _counting("an integer")


# The augmentations that `RandomAffine` draws together, in one resampling.
GEOMETRIC = ("flip", "rotate", "translate", "zoom", "crop")
# name: (default value, validator); the order is the order of application.
AUGMENTATIONS = {
    "flip": ("horizontal", _flip_mode),
    "altflip": ("horizontal", _horizontal),
    "rotate": (5.0, lambda name, value: _fraction(name, value, high=180.0)),
    "translate": (0.1, _fraction),
    "zoom": (0.1, lambda name, value: _fraction(name, value, high=0.9)),
    "crop": (0.9, _fraction),
    "shift": (2, _pixels),
    "lens": (0.2, _fraction),
    "cutout": (8, _pixels),
    "brightness": (0.2, _fraction),
    "contrast": (0.2, _fraction),
    "color": (0.2, _fraction),
    "randaugment": (2, _operations),
    "mixup": (0.2, _positive),
    "cutmix": (1.0, _positive),
}


def parse_spec(spec):
    """Returns an augmentation spec as a dict {name: value} in the order of application.

    Args:
        spec: a string "flip,rotate=5", a dict {"flip": True, "rotate": 5}, or None / "".

    Raises:
        ValueError: for an unknown name, a repeated name or a bad value.
    """
    if spec is None:
        return {}
    if isinstance(spec, str):
        items = []
        for part in spec.split(","):
            part = part.strip()
            if part:
                name, _, value = part.partition("=")
                items.append((name.strip().lower(), value.strip() or None))
    elif isinstance(spec, dict):
        items = [(str(name).lower(), value) for name, value in spec.items() if value is not False]
    else:
        raise InputTypeError(f"An augmentation spec is a string or a dict; got {type(spec).__name__}.")
    chosen = {}
    for name, value in items:
        if name not in AUGMENTATIONS:
            raise InputError(
                f"Unknown augmentation {name!r}; valid names: {', '.join(AUGMENTATIONS)}."
            )
        if name in chosen:
            raise InputError(f"Augmentation {name!r} is given twice in {spec!r}.")
        default, validate = AUGMENTATIONS[name]
        chosen[name] = validate(name, default if value is None or value is True else value)
    if "flip" in chosen and "altflip" in chosen:
        raise InputError("Choose one of flip and altflip: both mirror the images.")
    if "mixup" in chosen and "cutmix" in chosen:
        raise InputError("Choose one of mixup and cutmix: both mix the same labels.")
    return {name: chosen[name] for name in AUGMENTATIONS if name in chosen}


def augmentation(spec, *, seed=0, value_range=(0, 255), input_shape=None):
    """Returns the callable `(images, labels) -> (images, labels)` that a spec describes.

    Args:
        spec: a spec string, a dict, or None (see the table of this module).
        seed: int seed; a fresh callable with the same seed repeats the same draws.
        value_range: (low, high) of the raw pixel values, e.g. (0, 255).
        input_shape: per-example shape (H, W, C) to check the spec against, or None.

    Returns:
        An `Augmentation`.

    Raises:
        ValueError: for a bad spec, or one that does not fit `input_shape`.
    """
    return Augmentation(spec, seed=seed, value_range=value_range, input_shape=input_shape)


class Augmentation:
    """Applies a parsed augmentation spec to batches of images and one-hot labels.

    Two kinds of steps, in this order:
    - resampling (`RandomAffine` for flip, rotate, translate, zoom and crop; then
      `LensDistortion`): stateless, keyed by a seed per batch, so `map` runs them in
      parallel tf.data calls and still repeats exactly for a seed;
    - keras.layers (brightness, contrast, color, RandAugment, then MixUp or CutMix): they
      draw from their own seed generators, so `map` runs them in one sequential call, whose
      fixed order makes them repeatable too.
    A new `Augmentation` with the same seed repeats the whole sequence of draws.

    Args:
        spec: a spec string, a dict, or None.
        seed: int seed.
        value_range: (low, high) of the raw pixel values.
        input_shape: per-example shape (H, W, C) to check the spec against, or None.
    """

    def __init__(self, spec, *, seed=0, value_range=(0, 255), input_shape=None):
        self.spec = parse_spec(spec)
        self.seed = int(seed)
        self.value_range = tuple(float(v) for v in value_range)
        if input_shape is not None:
            _check_input_shape(self.spec, tuple(input_shape))
        geometric = {name: self.spec[name] for name in GEOMETRIC if name in self.spec}
        self.resampling = [RandomAffine(**geometric, seed=self.seed)] if geometric else []
        if "shift" in self.spec:
            self.resampling.append(PixelShift(self.spec["shift"], seed=self.seed))
        if "lens" in self.spec:
            self.resampling.append(LensDistortion(self.spec["lens"], seed=self.seed))
        if "cutout" in self.spec:
            self.resampling.append(Cutout(self.spec["cutout"], fill=sum(self.value_range) / 2,
                                          seed=self.seed))
        self.alternate_flip = "altflip" in self.spec
        self.layers = []
        self.mix = None
        for offset, (name, value) in enumerate(self.spec.items(), start=1):
            if name in GEOMETRIC or name in ("shift", "lens", "cutout", "altflip"):
                continue
            # Seeds spaced apart: "color" takes four consecutive ones.
            layers = _build(name, value, seed=self.seed + 17 * offset, value_range=self.value_range)
            if name in ("mixup", "cutmix"):
                self.mix = layers[0]
            else:
                self.layers.extend(layers)
        self._seed_generator = keras.random.SeedGenerator(self.seed)

    def __call__(self, images, labels, seed=None):
        """Augments one batch; `seed` (shape (2,) int) keys the resampling, else a new draw."""
        if seed is None:
            seed = self._seed_generator.next()
        if self.alternate_flip:  # epoch 0's coins
            coins = tf.random.stateless_uniform(tf.shape(images)[:1], seed=seed) < 0.5
            images = self.alternate(images, coins, 0)
        return self._apply_layers(self.resample(images, seed), labels)

    def flip_coins(self, size):
        """altflip's coins of a pool of `size` examples: which ones epoch 0 mirrors."""
        return tf.random.stateless_uniform([size], seed=[self.seed, 0xF11B]) < 0.5

    @staticmethod
    def alternate(images, coins, epoch):
        """Mirrors the images whose coin is up in even epochs, the others in odd ones."""
        mirror = tf.math.logical_xor(coins, tf.equal(tf.math.floormod(epoch, 2), 1))
        return tf.where(mirror[:, None, None, None], tf.reverse(images, axis=[2]), images)

    def resample(self, images, seed):
        """Applies the resampling steps, keyed by `seed` (shape (2,) int): stateless."""
        for index, layer in enumerate(self.resampling):
            images = layer.augment(images, tf.random.experimental.stateless_fold_in(seed, index))
        return images

    def _apply_layers(self, images, labels):
        for layer in self.layers:
            images = layer(images, training=True)
        if self.mix is not None:
            mixed = self.mix({"images": images, "labels": labels}, training=True)
            images, labels = mixed["images"], mixed["labels"]
        return images, labels

    def map(self, dataset):
        """Adds the augmentation to a tf.data dataset of (images, labels) batches.

        Each batch gets its own seed from a seeded random dataset, different every epoch and
        the same for a new pipeline with the same seed.
        """
        if self.alternate_flip:
            raise InputError(
                "altflip needs each image's position and epoch, which only single-process "
                "training's epoch stream gives; use flip here (multi-worker training).")
        if self.resampling:
            seeds = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True)
            dataset = tf.data.Dataset.zip(dataset, seeds.batch(2)).map(
                lambda batch, seed: (self.resample(batch[0], seed), batch[1]),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        if self.layers or self.mix is not None:
            dataset = dataset.map(self._apply_layers)
        return dataset

    def __repr__(self):
        spec = ",".join(f"{name}={value}" for name, value in self.spec.items())
        return f"Augmentation({spec!r}, seed={self.seed})"


def _check_input_shape(spec, input_shape):
    if spec and len(input_shape) != 3:
        raise InputError(
            f"Augmentations work on images (height, width, channels); these examples have "
            f"shape {input_shape}. Train signals and volumes without augment."
        )
    if "shift" in spec and spec["shift"] >= min(input_shape[:2]):
        raise InputError(
            f"Augmentation shift={spec['shift']} moves these {input_shape[0]}x{input_shape[1]} "
            "images by their whole side or more; use a shift below the side (2 for CIFAR's 32).")
    if "cutout" in spec and spec["cutout"] >= min(input_shape[:2]):
        raise InputError(
            f"Augmentation cutout={spec['cutout']} covers these {input_shape[0]}x"
            f"{input_shape[1]} images whole; use a side below theirs (8 to 16 for CIFAR's 32).")
    if "color" in spec and input_shape[-1] != 3:
        raise InputError(
            f"Augmentation 'color' changes saturation and hue, which needs RGB images; these "
            f"have {input_shape[-1]} channel(s). Use brightness and contrast instead."
        )


def _build(name, value, seed, value_range):
    """Returns the keras layers of one augmentation that is not a resampling."""
    if name == "brightness":
        return [keras.layers.RandomBrightness(value, value_range=value_range, seed=seed)]
    if name == "contrast":
        return [keras.layers.RandomContrast(value, value_range=value_range, seed=seed)]
    if name == "color":
        # Separate seeds: keras.layers.RandomColorJitter gives its four parts one seed,
        # which makes their factors move together.
        return [
            keras.layers.RandomBrightness(value, value_range=value_range, seed=seed),
            keras.layers.RandomContrast(value, value_range=value_range, seed=seed + 1),
            keras.layers.RandomSaturation(
                (0.5 - value / 2, 0.5 + value / 2), value_range=value_range, seed=seed + 2
            ),
            keras.layers.RandomHue(value / 2, value_range=value_range, seed=seed + 3),
        ]
    if name == "randaugment":
        return [keras.layers.RandAugment(value_range=value_range, num_ops=value, seed=seed)]
    if name == "mixup":
        return [keras.layers.MixUp(alpha=value, seed=seed)]
    return [keras.layers.CutMix(factor=value, seed=seed)]


class SeededAugmentation(keras.layers.Layer):
    """A batch augmentation whose draws come from a seed: `augment(images, seed)` is
    deterministic, so tf.data can pass a per-batch seed and still run maps in parallel; called
    as a layer it draws the seed from its own generator (identity at inference).

    Args:
        seed: int seed of the layer's generator.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        return self.augment(images, self.seed_generator.next())

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerascnn")
class RandomAffine(SeededAugmentation):
    """Random flip, rotation, translation, zoom and crop, fused into one resampling per image.

    One bilinear pass instead of one per augmentation: sharper, and about 1.7x less CPU time
    than chaining keras.layers.RandomFlip, RandomRotation and RandomZoom (measured on MNIST
    batches of 128), which matters when the pipeline shares the CPU with training.
    For each image it draws:
    - a mirror of each axis in `flip` with probability 1/2;
    - a rotation by an angle in [-rotate, rotate] degrees;
    - a crop of side fraction c in [crop, 1] at a random position (resized back);
    - a zoom factor z in [1 - zoom, 1 + zoom] (z > 1 shows more of the scene);
    - a shift of up to `translate` times the image side along each axis.
    Pixels from outside the image reflect the border (like the keras layers' default).

    Args:
        flip: None, "horizontal", "vertical" or "horizontal_and_vertical".
        rotate: largest angle in degrees.
        translate: largest shift as a fraction of the side.
        zoom: largest relative zoom, in [0, 1).
        crop: smallest crop side fraction, in (0, 1]; 1 disables cropping.
        seed: int seed.
    """

    def __init__(
        self, flip=None, rotate=0.0, translate=0.0, zoom=0.0, crop=1.0, seed=None, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        if flip is not None:
            _flip_mode("flip", flip)
        self.flip = flip
        self.rotate = float(rotate)
        self.translate = float(translate)
        self.zoom = float(zoom)
        self.crop = _fraction("crop", crop)

    def augment(self, images, seed):
        """Transforms a batch with the draws that `seed` (shape (2,) int) determines."""
        images = tf.convert_to_tensor(images)
        size = tf.cast(tf.shape(images)[2:0:-1], tf.float32)  # (width, height)
        draws = tf.random.stateless_uniform((9, tf.shape(images)[0]), seed)
        signs = 2 * draws - 1  # uniform in [-1, 1]
        side = self.crop + (1 - self.crop) * draws[0]
        flip_x = 0.5 if self.flip in ("horizontal", "horizontal_and_vertical") else 0.0
        flip_y = 0.5 if self.flip in ("vertical", "horizontal_and_vertical") else 0.0
        mirror = tf.stack(
            [tf.where(draws[1] < flip_x, -1.0, 1.0), tf.where(draws[2] < flip_y, -1.0, 1.0)], axis=1
        )
        crop_shift = (1 - side)[:, None] / 2 * tf.stack([signs[3], signs[4]], axis=1) * (size - 1)
        shift = tf.stack([signs[5], signs[6]], axis=1) * self.translate * size
        return affine(
            images,
            angle=signs[7] * self.rotate,
            scale=side * (1 + self.zoom * signs[8]),
            shift=crop_shift + shift,
            mirror=mirror,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "flip": self.flip,
            "rotate": self.rotate,
            "translate": self.translate,
            "zoom": self.zoom,
            "crop": self.crop,
        }


@keras.saving.register_keras_serializable(package="kerascnn")
class PixelShift(SeededAugmentation):
    """Shifts each image by a whole number of pixels, up to ±`pixels` along each axis, drawn
    per image; the pixels that come in reflect the border (the edge row is not repeated).

    The same as padding by `pixels` with reflection and cropping at a random position, without
    the padded copy.

    Args:
        pixels: the largest shift, a whole number of pixels below the image's side.
    """

    def __init__(self, pixels=2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.pixels = _pixels("shift", pixels)

    def augment(self, images, seed):
        shape = tf.shape(images)
        offsets = tf.random.stateless_uniform((2, shape[0]), seed, -self.pixels, self.pixels + 1,
                                              dtype=tf.int32)
        rows = _reflect(tf.range(shape[1])[None] + offsets[0][:, None], shape[1])
        columns = _reflect(tf.range(shape[2])[None] + offsets[1][:, None], shape[2])
        images = tf.gather(images, rows, axis=1, batch_dims=1)
        return tf.gather(images, columns, axis=2, batch_dims=1)

    def get_config(self):
        return {**super().get_config(), "pixels": self.pixels}


@keras.saving.register_keras_serializable(package="kerascnn")
class Cutout(SeededAugmentation):
    """Cutout (DeVries & Taylor, 2017): in each image, a `size` × `size` square centred on a
    pixel drawn uniformly is set to `fill`; near a border the square is clipped, so it hides
    less. On standardised images the paper's zero is the mean; `fill` in raw pixel values is
    its stand-in (mid-grey).

    Args:
        size: the square's side, a whole number of pixels.
        fill: the value of the hidden pixels.
    """

    def __init__(self, size=8, fill=0.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.size = _pixels("cutout", size)
        self.fill = float(fill)

    def augment(self, images, seed):
        shape = tf.shape(images)
        rows = _window(shape[1], shape[0], self.size, seed)
        columns = _window(shape[2], shape[0], self.size, tf.random.experimental.stateless_fold_in(
            seed, 1))
        hidden = tf.logical_and(rows[:, :, None], columns[:, None, :])[..., None]
        return tf.where(hidden, tf.cast(self.fill, images.dtype), images)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "fill": self.fill}


def _window(length, batch, size, seed):
    """(batch, length) masks of `size` consecutive positions around a uniform centre each."""
    centre = tf.random.stateless_uniform((batch, 1), seed, 0, length, dtype=tf.int32)
    start = centre - size // 2
    position = tf.range(length)[None]
    return tf.logical_and(position >= start, position < start + size)


def _reflect(index, size):
    """Indices reflected into [0, size): -1 -> 1, size -> size - 2 (for |overshoot| < size)."""
    return (size - 1) - tf.abs((size - 1) - tf.abs(index))


def affine(images, angle, scale, shift, mirror):
    """Resamples each image i about its centre: output pixel p shows input pixel
    R(angle[i]) * scale[i] * diag(mirror[i]) * (p - centre) + centre + shift[i] (bilinear).

    Args:
        images: float tensor (batch, height, width, channels).
        angle: rotation in degrees, (batch,).
        scale: sampling scale, (batch,): below 1 zooms in (a crop), above 1 zooms out.
        shift: (batch, 2) sampling offsets in pixels, (x, y).
        mirror: (batch, 2) of +1 or -1: -1 mirrors x (first column) or y (second column).
    """
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    centre_x = tf.cast(width - 1, tf.float32) / 2
    centre_y = tf.cast(height - 1, tf.float32) / 2
    radians = angle * (math.pi / 180)
    cos, sin = tf.cos(radians) * scale, tf.sin(radians) * scale
    m00, m01 = cos * mirror[:, 0], -sin * mirror[:, 1]
    m10, m11 = sin * mirror[:, 0], cos * mirror[:, 1]
    zeros = tf.zeros_like(m00)
    transforms = tf.stack(
        [
            m00, m01, centre_x + shift[:, 0] - m00 * centre_x - m01 * centre_y,
            m10, m11, centre_y + shift[:, 1] - m10 * centre_x - m11 * centre_y,
            zeros, zeros,
        ],
        axis=1,
    )
    resampled = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    resampled.set_shape(images.shape)  # the op forgets the static size
    return resampled


@keras.saving.register_keras_serializable(package="kerascnn")
class LensDistortion(SeededAugmentation):
    """Random radial lens distortion: barrel (k > 0) or pincushion (k < 0).

    Each output pixel at normalised radius r (r = 1 at the corners) samples the input at
    radius r * (1 + k * r**2), bilinearly, with k drawn uniformly in [-strength, strength]
    for each image; samples past the border take the nearest edge pixel.

    Args:
        strength: largest |k|, in (0, 1].
        seed: int seed.
    """

    def __init__(self, strength=0.2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.strength = _fraction("lens", strength)

    def augment(self, images, seed):
        """Distorts a batch with the coefficients that `seed` (shape (2,) int) determines."""
        images = tf.convert_to_tensor(images)
        k = tf.random.stateless_uniform(
            tf.shape(images)[:1], seed, -self.strength, self.strength
        )
        return distort(images, k)

    def get_config(self):
        return {**super().get_config(), "strength": self.strength}


def distort(images, k):
    """Applies radial distortion with coefficient k[i] to image i (see `LensDistortion`).

    Args:
        images: float tensor (batch, height, width, channels).
        k: float tensor (batch,).

    Returns:
        The distorted images, same shape and dtype.
    """
    # keras.ops.image.map_coordinates(order=1, fill_mode="nearest") gives the same values, but
    # it interpolates the integer image and channel coordinates too (16 gathers for these 4):
    # 3x slower on MNIST batches, which makes it the pipeline's bottleneck.
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    rows = tf.linspace(-1.0, 1.0, height)[:, None]
    cols = tf.linspace(-1.0, 1.0, width)[None, :]
    factor = 1.0 + tf.cast(k, tf.float32)[:, None, None] * ((rows**2 + cols**2) / 2.0)[None]
    height_f = tf.cast(height - 1, tf.float32)
    width_f = tf.cast(width - 1, tf.float32)
    source_rows = tf.clip_by_value((rows[None] * factor + 1.0) * height_f / 2.0, 0.0, height_f)
    source_cols = tf.clip_by_value((cols[None] * factor + 1.0) * width_f / 2.0, 0.0, width_f)
    top = tf.floor(source_rows)
    left = tf.floor(source_cols)
    weight_row = (source_rows - top)[..., None]
    weight_col = (source_cols - left)[..., None]
    top = tf.cast(top, tf.int32)
    left = tf.cast(left, tf.int32)
    bottom = tf.minimum(top + 1, height - 1)
    right = tf.minimum(left + 1, width - 1)
    flat = tf.reshape(tf.cast(images, tf.float32), (-1, channels))
    offsets = (tf.range(batch) * height * width)[:, None, None]

    def pixels(row, col):
        return tf.gather(flat, offsets + row * width + col)

    upper = pixels(top, left) * (1 - weight_col) + pixels(top, right) * weight_col
    lower = pixels(bottom, left) * (1 - weight_col) + pixels(bottom, right) * weight_col
    distorted = tf.cast(upper * (1 - weight_row) + lower * weight_row, images.dtype)
    distorted.set_shape(images.shape)  # the gathers forget the static size
    return distorted
