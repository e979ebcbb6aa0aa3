"""``--distribution_strategy`` → a ``tf.distribute`` strategy (the binaries use the TF backend)."""

from __future__ import annotations

__all__ = ["STRATEGIES", "make_strategy", "split_cpu"]

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


def split_cpu(count: int) -> None:
    """Splits the CPU into ``count`` logical devices (to run a mirrored strategy without
    accelerators); must run before TensorFlow initializes its devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )


def make_strategy(name: str, tpu_address: str | None = None):
    """The strategy called ``name``; models must be built inside its ``scope()``.

    ``mirrored`` uses every local GPU (or, with none, every logical CPU device);
    ``multi_worker_mirrored`` reads the cluster
    from ``TF_CONFIG``; ``tpu`` connects to ``tpu_address`` (or the environment's TPU).
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--distribution_strategy={name!r} is unknown; use one of {STRATEGIES}.")
