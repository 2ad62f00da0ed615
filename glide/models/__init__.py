"""Neural networks: the caption transformer, the ADM U-Net and the GLIDE model that joins them."""

from .glide import GLIDE, TextEmbedding
from .text_encoder import TextEncoder
from .unet import UNet

__all__ = ["GLIDE", "TextEmbedding", "TextEncoder", "UNet"]
