# DeepLab v1 LargeFOV's published dense-CRF settings (VOC, cross-validated): 10 mean-field
# iterations, Gaussian kernel w2 = 3, sigma_gamma = 3; bilateral kernel w1 = 4,
# sigma_alpha = 121, sigma_beta = 5. DeepLab v2 has its own values per backbone: see
# deeplabv2_crf.py. Arguments of mmaffseg.postprocessing.DenseCRF.
deeplab_crf = dict(
    iterations=10,
    gaussian_sxy=3.0,
    gaussian_compat=3.0,
    bilateral_sxy=121.0,
    bilateral_srgb=5.0,
    bilateral_compat=4.0,
    workers=0)  # > 1: refine the images of a test batch in that many processes
