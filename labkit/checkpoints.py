"""Resumable training: one way to save and restore a training loop's state."""
from __future__ import annotations


def resume(checkpoint_dir, checkpoint=None, strict: bool = False, **trackables):
    """Open the training checkpoint in ``checkpoint_dir`` and restore its latest save, if any.

    Pass the objects to track as keywords (``model=..., optimizer=..., step=tf.Variable(0)``) or a
    ready ``tf.train.Checkpoint``. Returns a ``tf.train.CheckpointManager`` (call ``.save()`` as
    training progresses; ``.latest_checkpoint`` tells whether anything was restored), or ``None``
    when ``checkpoint_dir`` is ``None`` (no checkpointing). ``strict`` asserts that every tracked
    object that exists was found in the save.
    """
    if checkpoint_dir is None:
        return None
    import tensorflow as tf

    checkpoint = checkpoint if checkpoint is not None else tf.train.Checkpoint(**trackables)
    manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=1)
    if manager.latest_checkpoint:
        status = checkpoint.restore(manager.latest_checkpoint)
        if strict:
            status.assert_existing_objects_matched()
    return manager
