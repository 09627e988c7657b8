"""Speaker-adversarial training (``-p adversary=W``): a classifier of the training clips'
speakers learns to tell them apart from the network's utterance embedding, while the network
is trained to leave it guessing (the cross-entropy of its answer against the uniform
distribution: the "confusion" loss of Tzeng et al. 2015 and Alvi et al.'s "Turning a blind
eye", 2018), so the embedding drops what tells the training speakers apart while it learns
the emotions. Gradient reversal (DANN) was tried first and did the opposite on the test's
toy problem: a probe read the speakers better from its embedding than without it (a network
can maximise the adversary's loss by making it confidently wrong, keeping the speaker).

The embedding is what the network's ``head`` reads (the input of its classifier, caught by a
forward pre-hook, flattened), so any network with a ``head`` module holding an ``nn.Linear``
can take part. The adversary exists during training only: it is not part of the network's
state, its artifact or what serving runs. The training loss the trainer records (its
``train_loss``) then includes the adversary's two terms.

``adversary_on=corpus`` makes the groups corpora instead of speakers; the trainer may add
unlabelled clips (an ``--adapt`` run's test clips) to each batch for the adversary alone:
domain-adversarial adaptation, the network learning to hide which side a clip comes from.

The confusion term's weight rises from 0 to ``W`` over training with DANN's ramp
``W * (2 / (1 + exp(-10 p)) - 1)`` (``p``: the fraction of epochs done), so the emotion
classifier gets going before the network is pushed to forget the speakers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = ["SpeakerAdversary", "confusion", "confusion_weight", "speaker_codes"]


def confusion(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, S) against the uniform distribution, the batch mean:
    ``log S`` at its minimum, when every speaker is equally likely. # (B, S) -> ()"""
    return -F.log_softmax(logits, -1).mean(-1).mean()


def confusion_weight(weight: float, progress: float) -> float:
    """DANN's ramp: ``weight * (2 / (1 + exp(-10 progress)) - 1)``, 0 at the start
    (``progress`` 0) and about ``weight`` at the end (``progress`` 1)."""
    p = min(max(progress, 0.0), 1.0)
    return weight * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


def _head_width(head: nn.Module) -> int:
    """The width of what ``head`` reads: its first linear layer's input (after an optional
    dropout or flatten, as in every network here)."""
    for layer in head.modules():
        if isinstance(layer, nn.Linear):
            return layer.in_features
    raise ValueError("the network's head has no nn.Linear layer to read an embedding from")


class SpeakerAdversary(nn.Module):
    """A 2-layer classifier of ``n_speakers`` on the input of ``net.head``.

    Use: build it after the network, add its parameters to the optimiser, run the network
    forward as usual, then add :meth:`loss` to the training loss; :meth:`detach` before the
    network is saved or used for prediction.

    Raises:
        ValueError: the network has no ``head`` with a linear layer, or fewer than 2 speakers.
    """

    def __init__(self, net: nn.Module, n_speakers: int, hidden: int = 128) -> None:
        super().__init__()
        head = getattr(net, "head", None)
        if not isinstance(head, nn.Module):
            raise ValueError(f"{type(net).__name__} has no head module: no speaker adversary")
        if n_speakers < 2:
            raise ValueError(f"a speaker adversary needs >= 2 training speakers, got {n_speakers}")
        width = _head_width(head)
        self.classifier = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(),
                                        nn.Linear(hidden, n_speakers))
        self._embedding: torch.Tensor | None = None
        #: clips of the last batch whose main speaker the adversary named (under mixup, the
        #: speaker with the larger share)
        self.hits = 0.0
        self._hook = head.register_forward_pre_hook(self._catch)

    def _catch(self, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._embedding = args[0]

    def loss(self, targets: torch.Tensor, weight: float) -> torch.Tensor:
        """The adversary's cross-entropy on the last forward's embedding (it learns, the
        network does not) plus ``weight`` times the network's confusion term (the network
        learns, the adversary does not). ``targets``: (B, S) speaker probabilities (one-hot,
        or mixed like the labels under mixup)."""
        z = self._embedding  # (B, D)
        if z is None:
            raise RuntimeError("run the network forward before the adversary's loss")
        z = z.flatten(1)  # (B, D): a head that flattens reads (B, C, L)
        self._embedding = None
        logits = self.classifier(z.detach())  # (B, S)
        self.hits = float((logits.argmax(-1) == targets.argmax(-1)).sum())
        learn = -(targets * F.log_softmax(logits, -1)).sum(-1).mean()
        return learn + weight * confusion(self._frozen(z))

    def _frozen(self, z: torch.Tensor) -> torch.Tensor:
        """The classifier's logits with its weights held fixed (gradients reach ``z`` only)."""
        h = z  # (B, D)
        for layer in self.classifier:
            h = (F.linear(h, layer.weight.detach(), layer.bias.detach())
                 if isinstance(layer, nn.Linear) else layer(h))
        return h  # (B, S)

    def detach(self) -> None:
        """Remove the hook from the network (after training)."""
        self._hook.remove()
        self._embedding = None


def speaker_codes(speakers: np.ndarray | list[str]) -> tuple[np.ndarray, int]:
    """Speaker names -> (codes 0..S-1 per clip, S)."""
    names, codes = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
    return codes.astype(np.int64), len(names)
