"""Training options shared by LoRA and the full-finetune baseline, so both runs use the same schedule."""

from dataclasses import asdict, dataclass, field
from typing import Literal

from lora_playground.errors import ConfigError
from lora_playground.settings import check_sequence_length

Method = Literal["lora", "full"]


@dataclass
class TrainConfig:
    """Options of one training run. LoRA fields are ignored by `method="full"` and the other way round."""

    method: Method = "lora"

    # LoRA (PEFT LoraConfig)
    rank: int = 8
    """LoRA rank r: the inner dimension of B·A. Trainable parameters grow linearly with it."""
    alpha: float = 16.0
    """LoRA scaling numerator: the update is scaled by alpha/r (alpha/sqrt(r) with rslora)."""
    dropout: float = 0.05
    """Dropout on the LoRA input during training."""
    target_modules: list[str] | str | None = None
    """Linear layer names to adapt; None picks the per-architecture default, "all-linear" every linear layer."""
    use_rslora: bool = False
    """Rank-stabilized LoRA: scale by alpha/sqrt(r) instead of alpha/r."""
    use_dora: bool = False
    """DoRA: learn a magnitude vector besides the low-rank direction update (slower per step)."""
    lora_last_n_blocks: int | None = None
    """Adapt the target layers of the last N transformer blocks only; None adapts every block. The backward
    pass then stops below the lowest adapted block, so training steps are cheaper."""

    # Full finetuning
    last_n_blocks: int | None = None
    """Full finetune only: train just the last N transformer blocks and the head; None trains everything."""

    # Schedule, shared by both methods
    epochs: float = 3.0
    learning_rate: float | None = None
    """None picks the method default: 5e-4 for LoRA, 5e-5 for full finetuning."""
    batch_size: int = 16
    grad_accum: int = 1
    """Gradient accumulation steps; the effective batch is batch_size * grad_accum."""
    max_length: int = 128
    """Maximum tokens per example; longer inputs are truncated and the count is reported."""
    group_by_length: bool = False
    """Batch examples of similar length together to cut padding."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without validation improvement; None trains all epochs."""
    eval_every_steps: int | None = None
    """Validate every N optimizer steps; None validates once per epoch."""
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    """Fraction of all optimizer steps spent warming the learning rate up linearly from 0, in [0, 1)."""
    lr_scheduler: str = "linear"
    """A transformers scheduler name: "linear", "cosine", "constant", "constant_with_warmup", ..."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs); for quick tests."""
    seed: int = 42
    """Seeds the head and LoRA initialization, dropout and the data order (the same for LoRA and full)."""
    bf16: bool = False
    """Run the forward pass under bfloat16 autocast (CPU must support it; check accuracy)."""
    packing: bool = False
    """Generation only: pack consecutive short chats into rows of up to max_length tokens, each chat
    attending only to itself. batch_size then counts packed rows, so an epoch has fewer steps."""
    num_threads: int | None = None
    """torch intra-op threads; None keeps torch's default."""
    activation_checkpointing: bool = False
    """Keep only each block's input during the forward pass and recompute the rest in the backward pass.
    Peak training memory drops (activations are most of a LoRA run's peak), and each step costs about one
    more forward pass. Losses and gradients are unchanged."""

    extra: dict = field(default_factory=dict)

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 5e-4 if self.method == "lora" else 5e-5

    def validate(self) -> None:
        """Raise ConfigError listing every invalid or conflicting option at once.

        Valid options whose max_length is above the server's sequence limit raise LimitError
        (see `settings.check_sequence_length`).
        """
        problems = []
        if self.method not in ("lora", "full"):
            problems.append(f"method={self.method!r} is not supported; use 'lora' or 'full'")
        if self.rank < 1:
            problems.append(f"rank={self.rank} must be at least 1")
        if self.alpha <= 0:
            problems.append(f"alpha={self.alpha} must be positive")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout} must be in [0, 1)")
        if self.epochs <= 0 and not self.max_steps:
            problems.append(f"epochs={self.epochs} must be positive (or set max_steps)")
        if self.batch_size < 1:
            problems.append(f"batch_size={self.batch_size} must be at least 1")
        if self.grad_accum < 1:
            problems.append(f"grad_accum={self.grad_accum} must be at least 1")
        if self.max_length < 8:
            problems.append(f"max_length={self.max_length} must be at least 8 tokens")
        if self.learning_rate is not None and self.learning_rate <= 0:
            problems.append(f"learning_rate={self.learning_rate} must be positive")
        if self.last_n_blocks is not None and self.last_n_blocks < 1:
            problems.append(f"last_n_blocks={self.last_n_blocks} must be at least 1")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio={self.warmup_ratio} must be in [0, 1)")
        if self.weight_decay < 0:
            problems.append(f"weight_decay={self.weight_decay} must not be negative")
        for name in ("max_steps", "eval_every_steps", "early_stopping_patience", "num_threads", "lora_last_n_blocks"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name}={value} must be at least 1 (or unset)")
        if self.method == "lora" and self.last_n_blocks is not None:
            problems.append("last_n_blocks applies to method='full' only; drop it or switch the method")
        if self.method == "full" and (self.use_dora or self.use_rslora or self.lora_last_n_blocks is not None):
            problems.append(
                "use_dora/use_rslora/lora_last_n_blocks apply to method='lora' only; drop them or switch the method"
            )
        if problems:
            raise ConfigError("Invalid training options: " + "; ".join(problems) + ".")
        check_sequence_length(self.max_length)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {key: value for key, value in values.items() if key in cls.__dataclass_fields__}
        return cls(**known)
