"""The ParaView side of cnnvis: proxies that convert cnn_engine results to VTK and back."""
