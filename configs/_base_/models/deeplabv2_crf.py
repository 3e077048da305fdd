# DeepLab v2's published dense-CRF settings (Chen et al., TPAMI 2018), grid-searched on VOC val
# for each model; 10 mean-field iterations. As (w1, sigma_alpha, sigma_beta, w2, sigma_gamma):
# ResNet-101 (4, 67, 3, 3, 1), VGG-16 (4, 65, 3, 2, 2). DeepLab v1 LargeFOV's (4, 121, 5, 3, 3)
# are in deeplab_crf.py. Arguments of mmaffseg.postprocessing.DenseCRF:
# w1 = bilateral_compat, sigma_alpha = bilateral_sxy, sigma_beta = bilateral_srgb,
# w2 = gaussian_compat, sigma_gamma = gaussian_sxy.
deeplabv2_r101_crf = dict(
    iterations=10,
    gaussian_sxy=1.0,
    gaussian_compat=3.0,
    bilateral_sxy=67.0,
    bilateral_srgb=3.0,
    bilateral_compat=4.0,
    workers=0)  # > 1: refine the images of a test batch in that many processes
deeplabv2_vgg16_crf = dict(
    iterations=10,
    gaussian_sxy=2.0,
    gaussian_compat=2.0,
    bilateral_sxy=65.0,
    bilateral_srgb=3.0,
    bilateral_compat=4.0,
    workers=0)
