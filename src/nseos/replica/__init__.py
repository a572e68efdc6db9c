"""The NN-replica estimator: networks trained on mock catalogues with noise regularisation
(Fujimoto, Fukushima and Murase, arXiv:1711.06748, 1903.03400), bootstrap ensembles for the
band, and the original validation protocol."""

from ._band import BandScale as BandScale
from ._band import stretch_band as stretch_band
from ._data import TrainingConfig as TrainingConfig
from ._data import TrainingData as TrainingData
from ._data import generate_training_data as generate_training_data
from ._estimator import ReplicaEstimator as ReplicaEstimator
from ._network import MLP as MLP
from ._network import AbstractArchitecture as AbstractArchitecture
from ._network import AbstractNetwork as AbstractNetwork
from ._network import DeepSets as DeepSets
from ._regularisation import AbstractRegularisation as AbstractRegularisation
from ._regularisation import DataReplicas as DataReplicas
from ._regularisation import Dropout as Dropout
from ._regularisation import NoRegularisation as NoRegularisation
from ._regularisation import ParameterNoise as ParameterNoise
from ._train import AbstractLoss as AbstractLoss
from ._train import Catalogues as Catalogues
from ._train import History as History
from ._train import MeanSquaredError as MeanSquaredError
from ._train import MeanSquaredLogError as MeanSquaredLogError
from ._train import TrainSettings as TrainSettings
from ._train import catalogue_features as catalogue_features
from ._train import train_ensemble as train_ensemble
from ._validate import PUBLISHED_RMS_KM as PUBLISHED_RMS_KM
from ._validate import VALIDATION_MASSES_MSUN as VALIDATION_MASSES_MSUN
from ._validate import ValidationResult as ValidationResult
from ._validate import validate as validate
