from .ssdlite_head import SSDLiteHead

__all__ = ['SSDLiteHead']
