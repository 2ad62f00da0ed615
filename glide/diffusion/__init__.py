"""The Gaussian diffusion process: noise schedules, respacing, and the maths of q and p."""

from .gaussian import Diffusion, PMeanVar
from .schedule import beta_schedule, space_timesteps

__all__ = ["Diffusion", "PMeanVar", "beta_schedule", "space_timesteps"]
