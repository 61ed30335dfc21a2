"""Write a real NIfTI volume out as a DICOM CT series (for reader tests)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def write_ct_series(
    nifti: Path,
    folder: Path,
    *,
    series_uid: str | None = None,
    description="CT",
    empty_uids: tuple[str, ...] = (),
) -> None:
    """``empty_uids``: dataset UIDs left empty, as anonymised exports do (the SOP UIDs stay
    in the file meta)."""
    img = nib.load(nifti)
    hu = np.asanyarray(img.dataobj).astype(np.int32)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    row_dir = lps[:3, 0] / np.linalg.norm(lps[:3, 0])
    col_dir = lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    study, series, frame = generate_uid(), series_uid or generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(0).permutation(hu.shape[2])  # files need not be in order
    for n, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.SeriesDescription, ds.PatientName = "CT", description, "Phantom^Test"
        # Type 2 patient and study attributes every real series carries (DICOM-SEG copies them).
        ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "TEXTSEG-001", "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.SeriesNumber, ds.Manufacturer = "", 1, "test"
        ds.InstanceNumber = int(n + 1)
        for keyword in empty_uids:
            setattr(ds, keyword, "")
        ds.ImagePositionPatient = [float(v) for v in (lps @ np.array([0, 0, k, 1]))[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [float(np.linalg.norm(lps[:3, 1])), float(np.linalg.norm(lps[:3, 0]))]
        ds.SliceThickness = float(np.linalg.norm(lps[:3, 2]))
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -2048
        ds.PixelData = (hu[:, :, k].T + 2048).astype(np.uint16).tobytes()
        ds.save_as(folder / f"IM{n:04d}", enforce_file_format=True)
