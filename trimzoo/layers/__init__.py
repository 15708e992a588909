"""The paper ideas as Keras layers."""

from trimzoo.layers.attention import SelfAttention
from trimzoo.layers.encoder_block import EncoderBlock
from trimzoo.layers.normalizers import ACTIVATIONS, NORMALIZERS
from trimzoo.layers.pooling import POOLING_MODES, SequencePooling
