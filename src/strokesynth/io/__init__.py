"""Readers and writers: NIfTI files and whole data sets in the supported layouts."""

from strokesynth.io.cohort import LAYOUTS, Cohort, detect_layout, open_cohort, write_cohort
from strokesynth.io.nifti import read_volume, write_volume

__all__ = ["LAYOUTS", "Cohort", "detect_layout", "open_cohort", "read_volume", "write_cohort", "write_volume"]
