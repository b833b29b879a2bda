@description('Storage account name (3-24 lowercase letters and digits).')
param name string

@description('Azure region.')
param location string

@description('Subnet for private endpoints.')
param privateEndpointSubnetId string

@description('Private DNS zone ids by key (blob, queue, table, file).')
param dnsZoneIds object

@description('Name of the Functions content share.')
param contentShareName string

// The Functions host's storage: reachable only through private endpoints; the host uses its
// managed identity (AzureWebJobsStorage__*). Shared keys stay enabled only because the Premium
// plan's content share (Azure Files) still needs a key-based connection string, which is kept in
// Key Vault, never in app settings.
resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    publicNetworkAccess: 'Disabled'
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowSharedKeyAccess: true
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'None'
    }
  }
}

resource files 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource share 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: files
  name: contentShareName
  properties: { shareQuota: 100 }
}

module endpoints 'privateEndpoint.bicep' = [for groupId in [ 'blob', 'queue', 'table', 'file' ]: {
  name: '${name}-pe-${groupId}'
  params: {
    name: '${name}-pe-${groupId}'
    location: location
    subnetId: privateEndpointSubnetId
    targetId: account.id
    groupId: groupId
    dnsZoneId: dnsZoneIds[groupId]
  }
}]

output id string = account.id
output name string = account.name
