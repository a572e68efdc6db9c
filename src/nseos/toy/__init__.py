"""The 1-D noise-injection study (Fujimoto, Fukushima and Murase, arXiv:1903.03400 and the
accompanying talk): can a network learn better with the same architecture, only by changing
how its training data are presented? Data replicas, parameter noise and dropout compared
on a small regression problem, with the NN-replica estimator's own regularisation objects
and training step."""

from ._network import TOY_ACTIVATIONS as TOY_ACTIVATIONS
from ._network import Dense1D as Dense1D
from ._network import ToyNetwork as ToyNetwork
from ._network import build_padded as build_padded
from ._problem import AbstractTarget as AbstractTarget
from ._problem import SpectralPeaks as SpectralPeaks
from ._problem import ToyProblem as ToyProblem
from ._report import claims as claims
from ._report import summary_rows as summary_rows
from ._report import write_report as write_report
from ._study import TALK_ARCHITECTURES as TALK_ARCHITECTURES
from ._study import Mode as Mode
from ._study import RunResult as RunResult
from ._study import StudyResult as StudyResult
from ._study import StudySettings as StudySettings
from ._study import run_study as run_study
from ._study import talk_modes as talk_modes
from ._study import train_mode as train_mode
