"""Through-plane super-resolution of a thick-slice volume, learned from that volume (from a pretrained start).

A thick-slice volume is sharp within its slices and blurred across them: each thick slice is the
scanner's slice profile (a box or Gaussian of the slice thickness) applied to the anatomy, sampled at
the slice spacing. The in-plane directions keep that detail, so (as SMORE does) the in-plane slices
are degraded along one of their axes exactly as the scanner degraded the slice axis, and a network
learns to undo it; then it runs on the planes that contain the slice axis, in both orientations,
and the two results are averaged. Learning begins from a network pretrained so on real T1 slices of
other patients, shipped for x2 to x6 (`start_weights`, made by `pretrain_network`), or from random
weights (the start "scratch").

The network works on the thick grid (`models.through_plane_network`): each thick position carries its
value and the F cubic-spline values of its sub-slices, and it outputs the F sub-slices as a correction
to the spline, projected so that the profile's weighted sum of each thick slice's sub-slices equals
the thick value. Units: along the slice axis everything is counted in thin slices, F of them per
thick slice; the profile's thickness in thin slices is thickness / (spacing / F) (F when the slices
touch, less with a gap, more when they overlap).

Its modules, each a concern: profile.py (slice profiles, thickening, the spline), sampler.py (training
pairs), learning.py (the recipe, the start, training, the held-out check), plan.py (axis, factor, profile of
a volume), application.py (the network applied, the output kept true; `upscale_volume`), premise.py (what the
held-out check cannot see, and its warning).
"""

from mrisr.scans.through_plane.application import (  # noqa: F401
                                                   apply_network,
                                                   blend_toward_spline,
                                                   keep_non_negative,
                                                   output_bounds,
                                                   restore_range,
                                                   thin_output,
                                                   upscale_volume,
)
from mrisr.scans.through_plane.learning import (  # noqa: F401
                                                   FEW_STEPS,
                                                   STARTS,
                                                   Recipe,
                                                   TrainingReport,
                                                   choose_start,
                                                   held_out_check,
                                                   load_start,
                                                   pretrain_network,
                                                   save_start,
                                                   say_quality,
                                                   start_weights,
                                                   train_network,
)
from mrisr.scans.through_plane.plan import NearlyIsotropic, Plan, make_plan  # noqa: F401
from mrisr.scans.through_plane.profile import PROFILES, SliceProfile, degrade, spline_matrix, spline_upsample  # noqa: F401
from mrisr.scans.through_plane.sampler import PatchSampler, network_input, normalise, sub_slices_to_fine  # noqa: F401
