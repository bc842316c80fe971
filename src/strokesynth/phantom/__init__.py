"""Digital stroke phantom: MNI ICBM152 anatomy, vascular territories, perfusion physics, scanners."""

from strokesynth.phantom.cohort import (
    TRUTH_DIR,
    cohort_summary,
    generate_cohort,
    read_ground_truth,
    subject_scans,
    write_phantom,
)
from strokesynth.phantom.config import PhantomConfig
from strokesynth.phantom.mr_study import MR_LABELS, generate_mr_studies, mr_summary, write_mr_studies
from strokesynth.phantom.scan import ANATOMY_LABELS, PhantomScan

__all__ = [
    "ANATOMY_LABELS", "MR_LABELS", "PhantomConfig", "PhantomScan", "TRUTH_DIR", "cohort_summary", "generate_cohort",
    "generate_mr_studies", "mr_summary", "read_ground_truth", "subject_scans", "write_mr_studies", "write_phantom",
]
