"""RoBERTa's byte-level BPE tokenizer with the reference word splitting."""

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="trimzoo")
class RobertaBPETokenizer(keras_hub.tokenizers.RobertaTokenizer):
    """RoBERTa's byte-level BPE tokenizer, equal to the reference.

    keras-hub's ``RobertaTokenizer`` whose eager (Python) path splits words
    with GPT-2's byte-level rule, as the reference does. (keras-hub's eager
    path uses Llama 3's rule, which splits numbers into groups of three
    digits and takes "'s" out of "'single'".) Its ``tf.data`` path is
    keras-hub's, which follows GPT-2 already; it stops at a NUL character.

    Args:
        vocabulary: dict ``token -> id`` or path of a ``vocab.json``.
        merges: list of ``"a b"`` merge rules or path of a ``merges.txt``.
        add_prefix_space: bool. Prepend a space to the text, as the
            reference's option. Defaults to ``False``.
        **kwargs: passed to ``keras_hub.tokenizers.RobertaTokenizer``.

    Examples:
    >>> vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4,
    ...          "a": 5, "b": 6, "\u0120": 7, "ab": 8, "\u0120ab": 9}
    >>> merges = ["a b", "\u0120 ab"]
    >>> tokenizer = RobertaBPETokenizer(vocab, merges)
    >>> [int(i) for i in tokenizer("ab ab")]
    [8, 9]
    """

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        super()._set_vocabulary_and_merges_tokenizers(vocabulary, merges)
        from tokenizers import pre_tokenizers

        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=self.add_prefix_space, use_regex=True)

