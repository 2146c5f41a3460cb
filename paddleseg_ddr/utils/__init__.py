"""Helpers every layer may use: the bottom layer, importing nothing from engine, deploy or models
(``paddleseg_ddr.errors`` only)."""
from .fileio import atomic_path, atomic_write, remove_own_files, save_paddle, temp_name, write_image

__all__ = ['atomic_path', 'atomic_write', 'remove_own_files', 'save_paddle', 'temp_name', 'write_image']
