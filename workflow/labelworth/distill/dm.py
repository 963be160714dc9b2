"""DM: distribution matching (docs/method.md §8.3, DC's `main_DM.py`).

The synthetic images start as random real images (class-major). Each iteration draws a freshly
initialised network, frozen, and for every class compares the mean embedding (`model.embed`, the
flattened features before the classifier) of `batch_real` random real images of the class with the
mean embedding of the class's synthetic images, both augmented by the same DSA transform (siamese:
two generators seeded alike, `shared=True`). The loss is the sum over classes of the squared distance
of the means; SGD with momentum 0.5 moves the images.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from labelworth.augment import dsa_augment
from labelworth.data import load_split
from labelworth.distill.synthesis import SynthesisFiles, draw_seed, real_image_init, write_synthetic_set
from labelworth.resume import run_iterations
from labelworth.errors import LabelworthError
from labelworth.settings import DmSettings, run_settings
from labelworth.models import build_model
from labelworth.specs import ImageSetSpec, parse_arch
from labelworth.training import resolve_device


def random_network(arch: str, spec, seed: int, device, dtype=torch.float32) -> torch.nn.Module:
    """A frozen network with PyTorch's default init from `seed`; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, spec)
    return model.to(device=device, dtype=dtype).requires_grad_(False)


def siamese_augment(real: torch.Tensor, synthetic: torch.Tensor, strategy: str, seed: int):
    """The same DSA transform (op and parameters) applied to both batches, whatever their sizes."""
    return (dsa_augment(real, strategy, torch.Generator().manual_seed(seed), shared=True),
            dsa_augment(synthetic, strategy, torch.Generator().manual_seed(seed), shared=True))


def distribution_matching_loss(model: torch.nn.Module, real_by_class: list[torch.Tensor],
                               synthetic_by_class: list[torch.Tensor], strategy: str,
                               seeds: list[int]) -> torch.Tensor:
    """Sum over classes of ||mean embed(DSA(real_c)) - mean embed(DSA(synthetic_c))||^2, class c's
    pair augmented with seeds[c]; zero when both sets are the same images."""
    loss = 0.0
    for real, synthetic, seed in zip(real_by_class, synthetic_by_class, seeds):
        real, synthetic = siamese_augment(real, synthetic, strategy, seed)
        loss = loss + (model.embed(real).mean(0) - model.embed(synthetic).mean(0)).pow(2).sum()
    return loss


def distill_dm(data_dir, images_per_class: int, seed: int, settings: DmSettings, files: SynthesisFiles,
               device: str = "auto") -> list[float]:
    """Distil `dm-ipc{images_per_class}` into `files`; returns the loss per iteration."""
    if parse_arch(settings.arch).family != "convnet":
        raise LabelworthError(f"DM embeds with a ConvNet's features; arch {settings.arch!r} has no `embed`")
    device = resolve_device(device)
    train = load_split(data_dir, "train", device)
    spec = train.spec
    images, classes = real_image_init(train, images_per_class, seed)
    images.requires_grad_(True)
    members = [torch.nonzero(train.labels.cpu() == label).flatten() for label in range(train.num_classes)]
    optimizer = torch.optim.SGD([images], lr=settings.lr_img, momentum=0.5)
    generator = torch.Generator().manual_seed(seed)

    def compute_gradients(iteration: int) -> float:
        model = random_network(settings.arch, spec, draw_seed(generator), device)
        real = [train.images[chosen[torch.randperm(len(chosen), generator=generator)[: settings.batch_real]]
                             .to(device)] for chosen in members]
        seeds = [draw_seed(generator) for _ in members]
        synthetic = images.view(train.num_classes, images_per_class, *images.shape[1:]).unbind(0)
        loss = distribution_matching_loss(model, real, list(synthetic), spec.dsa_strategy, seeds)
        loss.backward()
        return loss.item()

    identity = {"method": "dm", "dataset": spec.name, "images_per_class": images_per_class, "seed": seed,
                **run_settings(settings)}
    losses = run_iterations(compute_gradients, {"images": images}, [optimizer], generator, settings.iterations,
                            settings.save_every, files.work_dir, identity, f"DM ipc{images_per_class}")
    write_synthetic_set(files, images, classes, ImageSetSpec("dm", images_per_class), train, losses,
                        seed=seed, **asdict(settings))
    return losses
