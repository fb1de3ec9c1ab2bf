"""Audio augmentation (11.1.3): noise at a chosen SNR, speed change, pitch shift, time shift.

What each operation preserves:

* additive noise — every frequency of the signal; lowers the signal-to-noise ratio (SNR) to the
  requested value, exactly: ``10·log10(P_signal / P_noise) = snr_db``;
* speed change — the waveform's shape; duration *and* pitch change together (a tape played fast);
* pitch shift — the duration; all frequencies scale by ``2**(semitones/12)`` (phase-vocoder time
  stretch, then resampling back to the original length);
* time shift — everything but the onset time (zeros fill the gap).

No real speech set installs offline, so :func:`make_signals` generates a labelled set of short
synthetic sounds; :func:`load_wav_folder` reads your own WAV files (one sub-folder per label).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .params import ParameterError, check_float, check_int

SAMPLE_RATE = 8000
CLASSES = ("tone", "chirp_up", "chirp_down", "tremolo", "two_tone")


def _signal(signal):
    signal = np.asarray(signal)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"a signal must be a non-empty 1-D array, got shape {signal.shape}")
    if not np.issubdtype(signal.dtype, np.floating):
        raise TypeError(f"a signal must hold floats, got dtype {signal.dtype}")
    return signal


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def power(signal) -> float:
    """Mean power of a signal."""
    return float(np.mean(np.square(_signal(signal), dtype=np.float64)))


def snr_db(clean, noisy) -> float:
    """Signal-to-noise ratio in dB of ``noisy`` against its ``clean`` version."""
    clean, noisy = _signal(clean), _signal(noisy)
    return 10.0 * np.log10(power(clean) / power(noisy - clean))


def add_noise(signal, snr_db: float, rng=None):
    """Add white Gaussian noise scaled so that the SNR is exactly ``snr_db`` (same dtype)."""
    signal = _signal(signal)
    snr = check_float("snr_db", snr_db, -60.0, 120.0)
    if power(signal) == 0.0:
        raise ValueError("cannot set the SNR of a silent signal")
    noise = _rng(rng).standard_normal(signal.shape)
    noise *= np.sqrt(power(signal) / (10 ** (snr / 10)) / np.mean(noise ** 2))
    return (signal + noise).astype(signal.dtype)


def change_speed(signal, rate: float):
    """Play ``rate`` times faster: ``len/rate`` samples, every frequency × ``rate`` (FFT resampling)."""
    from scipy.signal import resample

    signal = _signal(signal)
    rate = check_float("rate", rate, 0.25, 4.0)
    return resample(signal, max(1, int(round(len(signal) / rate)))).astype(signal.dtype)


def time_stretch(signal, rate: float, n_fft: int = 512, hop: int = 128):
    """Phase-vocoder time stretch: ``rate`` > 1 is shorter, frequencies are kept."""
    signal = _signal(signal).astype(np.float64)
    rate = check_float("rate", rate, 0.25, 4.0)
    window = np.hanning(n_fft)
    padded = np.pad(signal, (n_fft, n_fft))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window
    spectrum = np.fft.rfft(frames, axis=1)  # (frames, bins)
    steps = np.arange(0, len(spectrum) - 1, rate)
    expected = 2 * np.pi * hop * np.arange(spectrum.shape[1]) / n_fft
    phase = np.angle(spectrum[0])
    out = np.empty((len(steps), spectrum.shape[1]), dtype=complex)
    for j, step in enumerate(steps):
        i, frac = int(step), step - int(step)
        magnitude = (1 - frac) * np.abs(spectrum[i]) + frac * np.abs(spectrum[i + 1])
        out[j] = magnitude * np.exp(1j * phase)
        delta = np.angle(spectrum[i + 1]) - np.angle(spectrum[i]) - expected
        phase += expected + (delta + np.pi) % (2 * np.pi) - np.pi
    frames_out = np.fft.irfft(out, n=n_fft, axis=1) * window
    length = (len(steps) - 1) * hop + n_fft
    result, norm = np.zeros(length), np.zeros(length)
    for j, frame in enumerate(frames_out):
        result[j * hop:j * hop + n_fft] += frame
        norm[j * hop:j * hop + n_fft] += window ** 2
    result /= np.maximum(norm, 1e-8)
    target = int(round(len(signal) / rate))
    return result[n_fft:n_fft + target]


def pitch_shift(signal, semitones: float, n_fft: int = 512, hop: int = 128):
    """Shift every frequency by ``2**(semitones/12)`` and keep the duration (same length, dtype)."""
    from scipy.signal import resample

    signal = _signal(signal)
    semitones = check_float("semitones", semitones, -24.0, 24.0)
    ratio = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(signal, 1.0 / ratio, n_fft, hop)  # ratio × longer, same pitch
    return resample(stretched, len(signal)).astype(signal.dtype)  # squeeze back: pitch × ratio


def time_shift(signal, shift: int):
    """Delay (``shift`` > 0) or advance (< 0) by ``shift`` samples, filling with zeros."""
    signal = _signal(signal)
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)):
        raise ParameterError("shift", shift, "an integer number of samples")
    out = np.zeros_like(signal)
    if shift >= 0:
        out[shift:] = signal[:len(signal) - shift] if shift < len(signal) else []
    else:
        out[:shift] = signal[-shift:]
    return out


def dominant_frequency(signal, sample_rate: int = SAMPLE_RATE) -> float:
    """Frequency (Hz) of the largest peak of the windowed spectrum, refined by parabolic fit."""
    signal = _signal(signal)
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
    offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return (k + offset) * sample_rate / len(signal)


def spectrogram(signal, sample_rate: int = SAMPLE_RATE, n_fft: int = 256, hop: int = 128):
    """``(frequencies Hz, times s, power dB)`` of a signal (Hann window)."""
    from scipy.signal import spectrogram as _spectrogram

    f, t, sxx = _spectrogram(_signal(signal), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop)
    return f, t, 10 * np.log10(sxx + 1e-10)


def log_spectrograms(signals, sample_rate: int = SAMPLE_RATE, n_fft: int = 256, hop: int = 128):
    """Classifier input: log-power spectrograms (N, frames, bins) of equal-length signals, float32."""
    from scipy.signal import stft

    _, _, z = stft(np.asarray(signals), fs=sample_rate, nperseg=n_fft, noverlap=n_fft - hop)
    return np.log(np.abs(z) ** 2 + 1e-6).transpose(0, 2, 1).astype(np.float32)


# -- data ---------------------------------------------------------------------------------------
def make_signals(n_per_class: int, duration: float = 0.5, sample_rate: int = SAMPLE_RATE, rng=None):
    """A synthetic labelled set: ``(signals (N, samples) float32, labels (N,) int)``, classes
    :data:`CLASSES`. Random base frequency (300–1500 Hz), loudness and onset for every example."""
    n_per_class = check_int("n_per_class", n_per_class, 1)
    duration = check_float("duration", duration, 0.05, 10.0)
    rng = _rng(rng)
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    signals, labels = [], []
    for label, name in enumerate(CLASSES):
        for _ in range(n_per_class):
            f0 = rng.uniform(300, 1500)
            if name == "tone":
                phase = 2 * np.pi * f0 * t
            elif name in ("chirp_up", "chirp_down"):
                f1 = f0 * rng.uniform(1.6, 2.4) if name == "chirp_up" else f0 / rng.uniform(1.6, 2.4)
                phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * duration))
            elif name == "tremolo":
                phase = 2 * np.pi * f0 * t
            else:  # two_tone: jumps to a second pitch halfway
                f1 = f0 * rng.uniform(1.3, 1.8)
                phase = 2 * np.pi * np.cumsum(np.where(t < duration / 2, f0, f1)) / sample_rate
            wave = np.sin(phase)
            if name == "tremolo":
                wave *= 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(8, 16) * t))
            envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # 20 ms fade in/out
            wave = rng.uniform(0.3, 1.0) * wave * envelope
            signals.append(time_shift(wave, int(rng.integers(-n // 10, n // 10 + 1))))
            labels.append(label)
    return np.asarray(signals, dtype=np.float32), np.asarray(labels)


def load_wav_folder(path, duration: float = 0.5, sample_rate: int = SAMPLE_RATE):
    """Your own sounds: ``path/<label>/*.wav`` → ``(signals (N, samples) float32, labels, names)``.

    Stereo is averaged to mono, integers are scaled to [-1, 1], every file is resampled to
    ``sample_rate`` and cut or zero-padded to ``duration`` seconds.
    """
    from scipy.io import wavfile
    from scipy.signal import resample

    from .data import DataError, MissingDataError, loading

    root = Path(path).expanduser()
    if not root.is_dir():
        raise MissingDataError(f"no folder {root}: expected {root}/<label>/*.wav")
    names = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.wav")))
    if not names:
        raise MissingDataError(f"no WAV files in sub-folders of {root}: expected {root}/<label>/*.wav")
    n = int(round(duration * sample_rate))
    signals, labels = [], []
    for label, name in enumerate(names):
        for file in sorted((root / name).glob("*.wav")):
            with loading(file, "replace or delete this file (a PCM or float WAV, one per clip)"):
                rate, raw = wavfile.read(file)
            if raw.size == 0 or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
                raise DataError(f"{file} holds no usable samples ({raw.dtype}, {raw.size} values); "
                                "replace or delete this file")
            data = raw.astype(np.float64)
            if not np.isfinite(data).all():
                raise DataError(f"{file} holds NaN or infinite samples; replace or delete this file")
            if np.issubdtype(raw.dtype, np.integer):
                data /= np.iinfo(raw.dtype).max
            if data.ndim == 2:
                data = data.mean(axis=1)
            if rate != sample_rate:
                data = resample(data, max(1, int(round(len(data) * sample_rate / rate))))
            data = np.pad(data[:n], (0, max(0, n - len(data))))
            signals.append(data)
            labels.append(label)
    return np.asarray(signals, dtype=np.float32), np.asarray(labels), names
